"""Outgoing requests of the sandbox: signed Align callbacks and iTero scan notifications.

Both vendors call the host back. The Align integration service signs its events the Standard
Webhooks way (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``); iTero posts a bare
JSON hint. :class:`Outbox` sends either, applies the faults staged for the ``callback`` and
``notify`` calls, records every attempt, and never raises a delivery failure.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from standardwebhooks import Webhook

from .faults import FaultBook
from .wire import Headers, RecordedRequest

logger = logging.getLogger("align_integration.sandbox")

DELIVERY_TIMEOUT = 10.0


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


def signed_event(
    event_type: str,
    data: dict[str, Any],
    secret: str,
    webhook_id: str | None = None,
    timestamp: datetime | float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed callback."""
    moment = as_datetime(timestamp)
    message_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    payload = json.dumps({"type": event_type, "timestamp": iso_utc(moment), "data": data})
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, payload),
    }
    return payload.encode(), headers


class Outbox:
    """Delivers the sandbox's outgoing POSTs with faults applied and every attempt recorded."""

    def __init__(self, record: Callable[[RecordedRequest], None], faults: FaultBook) -> None:
        self._record = record
        self._faults = faults

    def post(self, call: str, url: str, payload: bytes, headers: dict[str, str]) -> int:
        """POST ``payload`` to ``url``; the status the host answered, or 0 when none was.

        Only the host is logged: a notification URL carries its secret as a path segment.
        """
        parts = urlsplit(url)
        try:
            parsed_json = json.loads(payload)
        except ValueError:
            parsed_json = None
        record = RecordedRequest(
            call=call,
            method="POST",
            path=parts.path or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=Headers(headers),
            body=payload,
            json=parsed_json,
            form=None,
            idempotency_key=None,
            at=time.time(),
            url=url,
        )
        self._record(record)
        fault = self._faults.take(call)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop is not None or fault.status is not None:
                record.error = "not sent: injected fault"
                logger.info(
                    "outgoing call=%s method=POST host=%s status=none error=injected_fault",
                    call,
                    parts.netloc,
                )
                return 0
        started = time.monotonic()
        try:
            response = requests.post(url, data=payload, headers=headers, timeout=DELIVERY_TIMEOUT)
        except requests.RequestException as err:
            record.error = f"{type(err).__name__}: {err}"
            logger.warning(
                "outgoing call=%s method=POST host=%s status=none error=%s",
                call,
                parts.netloc,
                type(err).__name__,
            )
            return 0
        record.status = response.status_code
        logger.info(
            "outgoing call=%s method=POST host=%s status=%s duration_ms=%d",
            call,
            parts.netloc,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response.status_code
