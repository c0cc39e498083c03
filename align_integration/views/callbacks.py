"""The ``callbacks`` endpoint: signed events from the Align integration service.

A chain of checks, each failure a 4xx with a reason: method, size (413 before parsing),
Standard Webhooks signature against every secret in ``CALLBACK_SECRETS`` (rotation) and
its timestamp tolerance, JSON shape.  Then persist first (raw body and the headers minus
the signature), process second.  A duplicate ``webhook-id`` is 200 and is acted on once;
an event whose case is not known (yet) is stored as unmatched and answered 202; 5xx only
for our own faults.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from align_integration.conf import get_setting
from align_integration.models import CallbackEvent
from align_integration.workflows.callbacks.events import (
    InvalidEvent,
    ProcessingFailed,
    ingest,
    parse_event,
    process_event,
    store_for_later,
)

logger = logging.getLogger("align_integration.callbacks")

KEPT_HEADERS = ("content-type", "content-length", "user-agent", "webhook-id", "webhook-timestamp")


def _reject(status: int, reason: str) -> JsonResponse:
    logger.info("callback outcome=rejected status=%s reason=%s", status, reason)
    return JsonResponse({"ok": False, "error": reason}, status=status)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or ``None`` when it is over ``limit`` (checked before reading it all)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _verify(body: bytes, headers: dict[str, str]) -> str | None:
    """``None`` if any configured secret signed it; else the reason."""
    secrets = get_setting("CALLBACK_SECRETS")
    if isinstance(secrets, str):
        secrets = [secrets]
    if not all(headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        return "missing webhook-id, webhook-timestamp or webhook-signature header"
    reason = "no configured secret"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError as error:
            reason = str(error)
        except (ValueError, UnicodeDecodeError, RuntimeError):
            reason = "malformed signature header or body"
        else:
            return None
    return reason


@csrf_exempt
def receive_callback(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = _reject(405, "POST only")
        response["Allow"] = "POST"
        return response
    body = _read_body(request, int(get_setting("CALLBACK_MAX_BYTES")))
    if body is None:
        return _reject(413, "body is larger than the accepted size")
    headers = {k.lower(): v for k, v in request.headers.items()}
    problem = _verify(body, headers)
    if problem is not None:
        status = 401 if problem.startswith("missing") else 403
        return _reject(status, f"signature rejected: {problem}")
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _reject(400, "body is not valid JSON")
    webhook_id = headers["webhook-id"][:255]
    try:
        parsed = parse_event(payload)
    except InvalidEvent as error:
        if CallbackEvent.objects.filter(webhook_id=webhook_id).exists():
            return _duplicate(CallbackEvent.objects.get(webhook_id=webhook_id))
        return _reject(400, str(error))
    kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
    if get_setting("CALLBACK_PROCESSING") == "deferred":
        stored = store_for_later(webhook_id, parsed, body.decode(), kept)
        if stored is None:
            return _duplicate(CallbackEvent.objects.get(webhook_id=webhook_id))
        return JsonResponse({"ok": True, "event": stored.pk, "queued": True}, status=200)
    try:
        event = ingest(webhook_id, parsed, body.decode(), kept)
    except ProcessingFailed as failure:  # our fault: kept on the row, retried by align_worker
        return JsonResponse(
            {
                "ok": False,
                "error": "stored, but processing failed on our side; it will be retried",
                "event": failure.event.pk,
            },
            status=500,
        )
    if event is None:  # the same delivery again (or at the same moment)
        return _duplicate(CallbackEvent.objects.get(webhook_id=webhook_id))
    if event.state == CallbackEvent.UNMATCHED:  # stored; applied once its case is known
        return JsonResponse({"ok": True, "event": event.pk, "unmatched": True}, status=202)
    return JsonResponse({"ok": True, "event": event.pk}, status=200)


def _duplicate(event: CallbackEvent) -> JsonResponse:
    """A redelivery: act (inline processing only) if the first delivery did not finish."""
    inline = get_setting("CALLBACK_PROCESSING") != "deferred"
    if inline and event.state != CallbackEvent.PROCESSED:
        try:
            process_event(event.pk)
        except Exception as error:
            logger.error("callback=%s outcome=failed error=%s", event.pk, type(error).__name__)
            return JsonResponse({"ok": False, "error": "processing failed on our side"}, status=500)
    return JsonResponse({"ok": True, "event": event.pk, "duplicate": True}, status=200)
