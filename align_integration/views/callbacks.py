"""The ``callbacks`` endpoint: signed events from the Align integration service.

Validators, each failure a 4xx with a reason: method (405), size (413 before parsing),
Standard Webhooks signature against every secret in ``CALLBACK_SECRETS`` (rotation) and
its timestamp tolerance (401 without the headers, 403 when wrong), JSON shape (400).  Then
persist first (raw body and the headers minus the signature), process second.  A duplicate
``webhook-id`` is 200 and is acted on once; an event whose case is not known (yet) is stored
as unmatched and answered 202 (``align_worker`` applies it once its case resolves); 5xx only
for our own faults.  The pipeline and the status of each failure live in :mod:`.inbound`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from align_integration import telemetry
from align_integration.conf import get_setting
from align_integration.models import CallbackEvent
from align_integration.views.inbound import (
    Answered,
    BadRequest,
    Forbidden,
    InboundView,
    Unauthorized,
    Validator,
)
from align_integration.workflows.callbacks.events import (
    InvalidEvent,
    ParsedEvent,
    ProcessingFailed,
    ingest,
    parse_event,
    process_event,
    store_for_later,
)

logger = logging.getLogger("align_integration.callbacks")

KEPT_HEADERS = ("content-type", "content-length", "user-agent", "webhook-id", "webhook-timestamp")
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _verify(body: bytes, headers: dict[str, str]) -> None:
    """Return if any configured secret signed the body; else raise the reason."""
    if not all(headers.get(h) for h in SIGNATURE_HEADERS):
        raise Unauthorized(
            "signature rejected: missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    secrets = get_setting("CALLBACK_SECRETS")
    if isinstance(secrets, str):
        secrets = [secrets]
    reason = "no configured secret"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError as error:
            reason = str(error)
        except (ValueError, UnicodeDecodeError, RuntimeError):
            reason = "malformed signature header or body"
        else:
            return
    raise Forbidden(f"signature rejected: {reason}")


class CallbackView(InboundView):
    """``POST`` a signed event: see protocols/align-service.md."""

    log_name = "callback"
    logger = logger

    body: bytes
    headers: dict[str, str]
    webhook_id: str
    parsed: ParsedEvent

    def get_validators(self) -> Sequence[Validator]:
        return [self.check_method, self.check_size, self.check_signature, self.check_event]

    def check_size(self, request: HttpRequest) -> None:
        self.body = self.read_body(request, int(get_setting("CALLBACK_MAX_BYTES")))

    def check_signature(self, request: HttpRequest) -> None:
        self.headers = {k.lower(): v for k, v in request.headers.items()}
        _verify(self.body, self.headers)
        self.webhook_id = self.headers["webhook-id"][:255]

    def check_event(self, request: HttpRequest) -> None:
        try:
            payload: Any = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("body is not valid JSON") from None
        try:
            self.parsed = parse_event(payload)
            telemetry.set_attribute(self.traced, "event_type", self.parsed.event_type)
        except InvalidEvent as error:
            # A redelivery of an event we stored is answered as one, whatever changed since:
            # the sender must stop redelivering it.
            stored = CallbackEvent.objects.filter(webhook_id=self.webhook_id).first()
            if stored is not None:
                raise Answered(self._duplicate(stored)) from None
            raise BadRequest(str(error)) from None

    def handle(self, request: HttpRequest) -> HttpResponse:
        kept = {k: self.headers[k] for k in KEPT_HEADERS if k in self.headers}
        if get_setting("CALLBACK_PROCESSING") == "deferred":
            stored = store_for_later(self.webhook_id, self.parsed, self.body.decode(), kept)
            if stored is None:
                return self._duplicate(CallbackEvent.objects.get(webhook_id=self.webhook_id))
            return self.answer({"ok": True, "event": stored.pk, "queued": True}, 200, "queued")
        try:
            event = ingest(self.webhook_id, self.parsed, self.body.decode(), kept)
        except ProcessingFailed as failure:  # our fault: kept on the row, retried by align_worker
            return self.answer(
                {
                    "ok": False,
                    "error": "stored, but processing failed on our side; it will be retried",
                    "event": failure.event.pk,
                },
                500,
                "processing_failed",
            )
        if event is None:  # the same delivery again (or at the same moment)
            return self._duplicate(CallbackEvent.objects.get(webhook_id=self.webhook_id))
        if event.state == CallbackEvent.UNMATCHED:  # stored; applied once its case is known
            return self.answer({"ok": True, "event": event.pk, "unmatched": True}, 202, "unmatched")
        return self.answer({"ok": True, "event": event.pk}, 200, "processed")

    def _duplicate(self, event: CallbackEvent) -> HttpResponse:
        """A redelivery: act (inline processing only) if the first delivery did not finish."""
        inline = get_setting("CALLBACK_PROCESSING") != "deferred"
        if inline and event.state != CallbackEvent.PROCESSED:
            try:
                process_event(event.pk)
            except Exception as error:
                logger.error("callback=%s outcome=failed error=%s", event.pk, type(error).__name__)
                return self.answer(
                    {"ok": False, "error": "processing failed on our side"}, 500, "failed"
                )
        return self.answer({"ok": True, "event": event.pk, "duplicate": True}, 200, "duplicate")


receive_callback = CallbackView.as_endpoint()
