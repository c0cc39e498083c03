"""Outgoing requests of the sandbox: the host's callbacks and scan notifications go out here.

Both vendors call the host back: the Align integration service with signed events, iTero
with a bare JSON hint. :class:`Outbox` POSTs either, applies the faults staged for the
``callback`` and ``notify`` calls, records every attempt, and never raises a delivery failure.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.datastructures import Headers

from .faults import Fault
from .wire import RecordedRequest

logger = logging.getLogger("align_integration.sandbox")

DELIVERY_TIMEOUT = 10.0


class RequestLog(Protocol):
    """Where attempts are recorded (the sandbox's recorder)."""

    def record(self, recorded: RecordedRequest) -> None: ...

    def settled(self) -> None: ...


class FaultSource(Protocol):
    """Where staged faults are taken from (the sandbox's fault book)."""

    def take(self, call: str) -> Fault | None: ...


class Outbox:
    """Delivers the sandbox's outgoing POSTs with faults applied and every attempt recorded."""

    def __init__(self, log: RequestLog, faults: FaultSource) -> None:
        self._log = log
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
        self._log.record(record)
        try:
            return self._deliver(record, call, url, payload, headers)
        finally:
            self._log.settled()

    def _deliver(
        self, record: RecordedRequest, call: str, url: str, payload: bytes, headers: dict[str, str]
    ) -> int:
        host = urlsplit(url).netloc
        fault = self._faults.take(call)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop is not None or fault.status is not None:
                record.error = "not sent: injected fault"
                logger.info(
                    "outgoing call=%s method=POST host=%s status=none error=injected_fault",
                    call,
                    host,
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
                host,
                type(err).__name__,
            )
            return 0
        record.status = response.status_code
        logger.info(
            "outgoing call=%s method=POST host=%s status=%s duration_ms=%d",
            call,
            host,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response.status_code
