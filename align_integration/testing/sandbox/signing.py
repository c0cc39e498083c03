"""Standard Webhooks signing and the time format of the Align callbacks.

The Align integration service signs each callback the Standard Webhooks way (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; secrets ``whsec_<base64>``). These functions
make the body and headers of one signed event; the sandbox's callbacks and the test kit's
``post_callback`` helper both use them.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook


def new_callback_secret() -> str:
    """A fresh Standard Webhooks secret, ``whsec_<base64>``."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def iso_utc(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a ``Z``, microseconds kept so that event order is unambiguous."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def as_datetime(timestamp: datetime | float | None) -> datetime:
    """A timezone-aware UTC datetime from a datetime, a Unix time, or now."""
    if timestamp is None:
        return datetime.now(UTC)
    if isinstance(timestamp, datetime):
        return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(timestamp), UTC)


def signature_headers(
    body: str | bytes,
    secret: str,
    webhook_id: str | None = None,
    timestamp: datetime | float | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` signed with ``secret``."""
    moment = as_datetime(timestamp)
    message_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, text),
    }


def signed_event(
    event_type: str,
    data: dict[str, Any],
    secret: str,
    webhook_id: str | None = None,
    timestamp: datetime | float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed callback ``{"type", "timestamp", "data"}``."""
    moment = as_datetime(timestamp)
    payload = json.dumps({"type": event_type, "timestamp": iso_utc(moment), "data": data})
    headers = {"Content-Type": "application/json"}
    headers.update(signature_headers(payload, secret, webhook_id, moment))
    return payload.encode(), headers
