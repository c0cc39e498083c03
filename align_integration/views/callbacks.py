"""The ``callbacks`` endpoint: signed events from the Align integration service.

A chain of checks, each failure a 4xx with a reason: method, size (413 before parsing),
Standard Webhooks signature against every secret in ``CALLBACK_SECRETS`` (rotation) and
its timestamp tolerance, JSON shape, known case.  Then persist first (raw body and the
headers minus the signature), process second.  A duplicate ``webhook-id`` is 200 and is
acted on once; 5xx only for our own faults.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from align_integration.conf import get_setting
from align_integration.models import CallbackEvent
from align_integration.workflows.callbacks import (
    InvalidEvent,
    find_case,
    parse_event,
    process_event,
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
    existing = CallbackEvent.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return _duplicate(existing)
    try:
        parsed = parse_event(payload)
        find_case(parsed.case_id)
    except InvalidEvent as error:
        return _reject(422 if "caseId names" not in str(error) else 404, str(error))
    try:
        with transaction.atomic():
            event = CallbackEvent.objects.create(
                webhook_id=webhook_id,
                event_type=parsed.event_type,
                case_reference=parsed.case_id,
                body=body.decode(),
                headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
            )
    except IntegrityError:  # the same delivery, arriving at the same moment
        return _duplicate(CallbackEvent.objects.get(webhook_id=webhook_id))
    try:
        process_event(event.pk)
    except Exception as error:  # our fault: kept on the row, retried by align_worker
        logger.error("callback=%s outcome=failed error=%s", event.pk, type(error).__name__)
        return JsonResponse(
            {"ok": False, "error": "stored, but processing failed on our side; it will be retried"},
            status=500,
        )
    return JsonResponse({"ok": True, "event": event.pk}, status=200)


def _duplicate(event: CallbackEvent) -> JsonResponse:
    """A redelivery: act only if the first delivery did not finish."""
    if event.state != CallbackEvent.PROCESSED:
        try:
            process_event(event.pk)
        except Exception as error:
            logger.error("callback=%s outcome=failed error=%s", event.pk, type(error).__name__)
            return JsonResponse({"ok": False, "error": "processing failed on our side"}, status=500)
    return JsonResponse({"ok": True, "event": event.pk, "duplicate": True}, status=200)
