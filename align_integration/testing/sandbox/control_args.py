"""Control request bodies: which fields each control endpoint takes, and reading them.

A control body is a JSON object (or, from the status page, an HTML form) whose names are the
Python API's keyword arguments; :func:`read_arguments` checks the names and reads numbers and
flags sent as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .wire import ApiError, ApiRequest

SCAN_FIELDS = {
    "account_number": str,
    "chart_number": str,
    "first_name": str,
    "last_name": str,
    "notify": bool,
    "case_type": str,
    "doctor_name": str,
    "stl_count": int,
    "size": int,
    "not_ready_downloads": int,
    "xml_version": str,
    "screenshots": int,
    "revisions": int,
    "status": str,
}
UPDATE_FIELDS = {
    "notify": bool,
    "not_ready_downloads": int,
    "reason": str,
    "stl_count": int,
    "screenshots": int,
    "xml_version": str,
}
FAULT_FIELDS = {
    "call": str,
    "status": int,
    "retry_after": object,
    "delay": float,
    "drop": str,
    "times": int,
    "body": object,
    "rate": float,
    "seed": int,
}
PATIENT_FIELDS = {
    "case_id": str,
    "patient_id": str,
    "mrn": str,
    "first_name": str,
    "last_name": str,
    "date_of_birth": str,
    "gender": str,
    "email": str,
    "phone": str,
}
ORDER_FIELDS = {
    "case_id": str,
    "patient_id": str,
    "order_id": str,
    "mrn": str,
    "order_type": str,
    "treatment_option": str,
    "chief_concern": str,
    "status": str,
    "plan_version": int,
}
CONFIG_FIELDS = {
    "callback_url": str,
    "auto_callbacks": bool,
    "callback_delay": float,
    "plan_viewer_url": str,
}


def from_html_form(request: ApiRequest) -> bool:
    return request.mimetype == "application/x-www-form-urlencoded"


def body_of(request: ApiRequest) -> dict[str, Any]:
    if from_html_form(request):
        return dict(request.form_or_none or {})
    return request.json_object(optional=True)


def read_arguments(
    body: dict[str, Any], fields: Mapping[str, type], required: Sequence[str] = ()
) -> dict[str, Any]:
    """``body`` as keyword arguments: known names only, empty form values left out, numbers
    and flags read from text as an HTML form sends them; a 400 otherwise."""
    unknown = sorted(set(body) - set(fields))
    missing = [name for name in required if body.get(name) in ("", None)]
    if unknown or missing:
        raise ApiError(
            400,
            f"expected fields {', '.join(fields)}; unknown: {unknown}; missing: {missing}",
        )
    arguments: dict[str, Any] = {}
    try:
        for name, value in body.items():
            kind = fields[name]
            if value == "" or (value is None and kind is not object):
                continue
            if kind is bool and isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            elif kind in (int, float) and not isinstance(value, bool):
                value = kind(value)
            elif kind is str and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            arguments[name] = value
    except (TypeError, ValueError) as err:
        raise ApiError(400, str(err)) from err
    return arguments
