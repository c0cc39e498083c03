"""Reading a callback: the shape of each event type, checked before anything is stored.

:func:`parse_event` turns the JSON body into a :class:`ParsedEvent` or raises
:class:`InvalidEvent` with a reason that names fields, never their values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from align_integration.models import AlignOrder
from align_integration.workflows.callbacks.viewer import viewer_url

SALES_ORDER = "sales_order.created"
TREATMENT_PLAN = "treatment_plan.submitted"
STATUS_CHANGED = "case.status_changed"
EVENT_TYPES = (SALES_ORDER, TREATMENT_PLAN, STATUS_CHANGED)
MAX_INT = 2_147_483_647  # the largest value every database's integer column holds


class InvalidEvent(ValueError):
    """The body cannot be an event we accept; the message is the reason (no data values)."""


@dataclass(frozen=True)
class ParsedEvent:
    event_type: str
    case_id: str
    data: dict[str, Any]


def _text(data: dict[str, Any], field: str, *, max_length: int = 64) -> str:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent(f"data.{field} must be a string.")
    text = str(value).strip()
    if not text:
        raise InvalidEvent(f"data.{field} must not be empty.")
    if len(text) > max_length:
        raise InvalidEvent(f"data.{field} is longer than {max_length} characters.")
    if "\x00" in text:
        raise InvalidEvent(f"data.{field} must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise InvalidEvent(f"data.{field} is not valid Unicode text.") from None
    return text


def _when(data: dict[str, Any], field: str) -> dt.datetime:
    value = data.get(field)
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidEvent(f"data.{field} must be an ISO 8601 date-time.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    parsed = parsed.astimezone(dt.UTC)  # databases limit the offsets they store
    if not 1970 <= parsed.year <= 9998:
        raise InvalidEvent(f"data.{field} is out of range.")
    return parsed


def parse_event(payload: Any) -> ParsedEvent:
    """Validate the shape of an event; :class:`InvalidEvent` says what is wrong."""
    if not isinstance(payload, dict):
        raise InvalidEvent("The body must be a JSON object.")
    event_type = payload.get("type")
    if not isinstance(event_type, str):
        raise InvalidEvent("type must be a string.")
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(f"Unknown event type; expected one of {', '.join(EVENT_TYPES)}.")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("data must be a JSON object.")
    case_id = _text(data, "caseId", max_length=128)
    clean: dict[str, Any] = {}
    if event_type == SALES_ORDER:
        clean["salesOrderNumber"] = _text(data, "salesOrderNumber")
        clean["patientId"] = _text(data, "patientId")
        order_type = data.get("orderType")
        if order_type not in (AlignOrder.PRIMARY, AlignOrder.SECONDARY):
            raise InvalidEvent("data.orderType must be 'primary' or 'secondary'.")
        clean["orderType"] = order_type
        clean["createdAt"] = _when(data, "createdAt")
    elif event_type == TREATMENT_PLAN:
        clean["planId"] = _text(data, "planId")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidEvent("data.version must be an integer.")
        if not 0 <= version <= MAX_INT:
            raise InvalidEvent(f"data.version must be an integer from 0 to {MAX_INT}.")
        clean["version"] = version
        clean["createdAt"] = _when(data, "createdAt")
        clean["viewerUrl"] = viewer_url(data.get("viewerUrl"))  # optional; a bad one is ""
    else:
        clean["status"] = _text(data, "status")
        clean["changedAt"] = _when(data, "changedAt")
    return ParsedEvent(event_type, case_id, clean)
