"""What the app keeps of a vendor's error: a status, a stable code and a count, never its text.

Align's integration service and iTero answer errors with free text (``{"errors": [...]}``,
OAuth ``error`` fields) that may echo the patient the request was about, in any case or
date format.  So nothing the vendor wrote is stored or shown as it came: the timeline
(``CaseEvent``), ``RemoteOperation.last_errors``, flow results (``AlignResult.errors``,
hence the staff panel, JSON answers and batch reports) and the iTero ``last_error`` fields
keep :func:`error_summary`, which is built only from the status, a code from
:data:`ERROR_CODES`, the number of vendor messages, and protocol field names from the
allowlist :data:`KNOWN_FIELDS`.  The raw text, redacted, goes only to
``RemoteOperation.vendor_detail`` (see :mod:`align_integration.workflows.redaction`).
"""

from __future__ import annotations

import re
from typing import Any

from align_integration.client.errors import (
    AlignAuthenticationError,
    AlignConfigurationError,
    AlignConnectionError,
    AlignError,
    AlignNotFound,
    AlignPermissionDenied,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceUnavailable,
    AlignTimeout,
)

#: The stable codes, and what each means.  Documented in docs/security.md.
ERROR_CODES: dict[str, str] = {
    "rejected": "the request was refused (400 or another 4xx)",
    "unauthorized": "credentials or token refused (401)",
    "forbidden": "not allowed (403)",
    "not_found": "not found (404)",
    "conflict": "conflicts with the vendor's state (409)",
    "too_large": "too large (413)",
    "validation_failed": "a field was refused (422)",
    "rate_limited": "too many requests (429)",
    "unavailable": "the vendor failed (5xx); worth trying again later",
    "protocol": "the answer could not be used (not JSON, an id missing)",
    "timeout": "no answer in time; the vendor may have acted",
    "connection": "no answer (connection refused or reset)",
    "configuration": "this deployment is not configured for the call",
    "error": "any other failure",
}

_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "validation_failed",
    429: "rate_limited",
}

#: Field names of the wire protocols (docs/…/protocols).  A vendor message that starts with
#: one of them (``"dateOfBirth: required"``) contributes the name, which is the app's own text.
KNOWN_FIELDS: tuple[str, ...] = (
    "caseId",
    "patientId",
    "orderId",
    "mrn",
    "firstName",
    "lastName",
    "dateOfBirth",
    "gender",
    "email",
    "phone",
    "orderType",
    "treatmentOption",
    "chiefConcern",
    "pId",
    "vault_id",
    "external_key",
    "comments",
    "accountNumber",
    "callbackUrl",
    "rxId",
    "reason",
    "Idempotency-Key",
)
_FIELD_AT_START = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]{0,40})\s*:")
_KNOWN_BY_LOWER = {name.lower(): name for name in KNOWN_FIELDS}

#: OAuth 2 error codes (RFC 6749 §5.2, §4.1.2.1): the only ``error`` values kept as they are.
OAUTH_ERROR_CODES: frozenset[str] = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
    }
)

_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]+")


def error_code(error: BaseException) -> str:
    """The stable code (a key of :data:`ERROR_CODES`) of ``error``."""
    if isinstance(error, AlignTimeout):
        return "timeout"
    if isinstance(error, AlignConnectionError):
        return "connection"
    if isinstance(error, AlignConfigurationError):
        return "configuration"
    if not isinstance(error, AlignError):
        return "error"
    status = error.status_code
    if isinstance(error, AlignRequestRejected) and status is not None and status >= 500:
        return "protocol"  # the client's own verdict on an answer it could not use
    if isinstance(error, AlignServiceUnavailable) or (status is not None and status >= 500):
        return "unavailable"
    if isinstance(error, AlignRateLimited):
        return "rate_limited"
    if isinstance(error, AlignAuthenticationError):
        return "unauthorized"
    if isinstance(error, AlignPermissionDenied):
        return "forbidden"
    if isinstance(error, AlignNotFound):
        return "not_found"
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return "rejected"


def fields_named(messages: list[Any]) -> list[str]:
    """The allowlisted protocol field names that the vendor's messages start with."""
    named: list[str] = []
    for message in messages:
        match = _FIELD_AT_START.match(str(message))
        if match is None:
            continue
        name = _KNOWN_BY_LOWER.get(match.group(1).lower())
        if name is not None and name not in named:
            named.append(name)
    return named


def error_summary(error: BaseException, service: str = "Align") -> str:
    """``"Align answered 422 (validation_failed, 2 errors: dateOfBirth, gender)"``.

    Only the status, the code, the count of the vendor's messages and allowlisted field
    names: safe to store, show and log.
    """
    code = error_code(error)
    if code == "timeout":
        return f"No answer from {service} in time ({code})"
    if code == "connection":
        return f"Could not reach {service} ({code})"
    if code == "configuration":
        return f"{service} is not configured here ({code})"
    status = getattr(error, "status_code", None)
    vendor_messages = list(getattr(error, "errors", []) or [])
    details = [code]
    if vendor_messages:
        count = len(vendor_messages)
        text = f"{count} error{'s' if count != 1 else ''}"
        named = fields_named(vendor_messages)
        if named:
            text += ": " + ", ".join(named)
        details.append(text)
    if code == "protocol":
        return f"{service}'s answer could not be used ({', '.join(details)})"
    where = f"answered {status}" if status else "failed"
    return f"{service} {where} ({', '.join(details)})"


def oauth_error_code(value: str) -> str:
    """An OAuth ``error`` value if it is a standard code, else ``"other"``."""
    return value if value in OAUTH_ERROR_CODES else "other"


def looks_like_id(value: str, max_length: int = 128) -> bool:
    """True for an id-shaped string: letters, digits and ``._:-``, no spaces, not too long."""
    return 0 < len(value) <= max_length and _ID_SHAPE.fullmatch(value) is not None


def safe_request_id(value: str) -> str:
    """A vendor's request id when it looks like one, else ``""``."""
    value = (value or "").strip()
    return value if looks_like_id(value) else ""
