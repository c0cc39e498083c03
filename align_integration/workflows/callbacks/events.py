"""Processing callbacks from the Align integration service.

Persist first, process second: the view stores a ``CallbackEvent`` (unique by
``webhook-id``) and then calls :func:`process_event`, which locks the row, applies the
event in one transaction and marks it processed.  A redelivery, also one arriving at the
same moment, finds the row processed and does nothing; a failure leaves the row
``failed`` with the error so it can be reprocessed (admin action, ``align_worker``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from align_integration import signals
from align_integration.adapters import get_adapter
from align_integration.models import AlignCase, AlignOrder, CallbackEvent, CaseEvent
from align_integration.workflows.callbacks.viewer import viewer_url
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.callbacks")

SALES_ORDER = "sales_order.created"
TREATMENT_PLAN = "treatment_plan.submitted"
STATUS_CHANGED = "case.status_changed"
EVENT_TYPES = (SALES_ORDER, TREATMENT_PLAN, STATUS_CHANGED)
MAX_INT = 2_147_483_647  # the largest value every database's integer column holds


class InvalidEvent(ValueError):
    """The body cannot be an event we accept; the message is the reason (no data values)."""


class UnknownCase(InvalidEvent):
    """The event's ``caseId`` names no case of this site."""


class _AlreadyStored(Exception):
    """The insert hit the unique ``webhook_id``: this delivery is a duplicate."""


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


def find_case(case_id: str) -> Any:
    """The host case for a ``caseId``; ``InvalidEvent`` if there is none."""
    try:
        return get_adapter().case_for_reference(case_id)
    except LookupError:
        raise UnknownCase("data.caseId names no known case.") from None


def _failure_text(error: BaseException) -> str:
    # Our own messages are safe to keep; anything else keeps only its class name,
    # since a host's code may put anything in an exception message.
    reason = str(error) if isinstance(error, InvalidEvent) else ""
    return f"{type(error).__name__}: {reason}"[:1000]


class ProcessingFailed(Exception):
    """The event was stored but applying it failed; the row keeps the error."""

    def __init__(self, event: CallbackEvent, error: BaseException) -> None:
        super().__init__(f"callback {event.pk} failed")
        self.event = event
        self.error = error


def ingest(
    webhook_id: str, parsed: ParsedEvent, case: Any, body: str, headers: dict[str, str]
) -> CallbackEvent | None:
    """Store a new delivery and apply it: the fast path of the endpoint.

    One transaction inserts the row and applies the event; its unique ``webhook_id``
    makes a concurrent duplicate wait for it and then fail, so the event is acted on once.
    If applying fails, the event is still stored, as ``failed`` with the error, and
    :class:`ProcessingFailed` is raised.  Returns ``None`` for a duplicate ``webhook_id``.
    """
    fields = {
        "webhook_id": webhook_id,
        "event_type": parsed.event_type,
        "case_reference": parsed.case_id,
        "body": body,
        "headers": headers,
        "attempts": 1,
    }
    try:
        with transaction.atomic():
            try:
                event = CallbackEvent.objects.create(
                    **fields, state=CallbackEvent.PROCESSED, processed_at=timezone.now()
                )
            except IntegrityError as duplicate:
                raise _AlreadyStored from duplicate  # rolls the transaction back
            _apply(parsed, case)
    except _AlreadyStored:
        return None  # the same delivery, stored by an earlier or a concurrent request
    except Exception as error:
        try:
            event = CallbackEvent.objects.create(
                **fields, state=CallbackEvent.FAILED, error=_failure_text(error)
            )
        except IntegrityError:
            return None
        logger.warning("callback=%s outcome=failed error=%s", event.pk, type(error).__name__)
        raise ProcessingFailed(event, error) from error
    logger.info("callback=%s type=%s outcome=processed", event.pk, parsed.event_type)
    return event


def store_for_later(
    webhook_id: str, parsed: ParsedEvent, body: str, headers: dict[str, str]
) -> CallbackEvent | None:
    """Deferred processing: store the validated event (``received``) and enqueue it.

    Returns ``None`` for a duplicate ``webhook_id``.  ``align_worker`` (or the task)
    applies it with :func:`process_event`.
    """
    fields = {
        "webhook_id": webhook_id,
        "event_type": parsed.event_type,
        "case_reference": parsed.case_id,
        "body": body,
        "headers": headers,
    }
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint, so a duplicate leaves the caller's
                event = CallbackEvent.objects.create(**fields)  # transaction usable
        else:  # one autocommitted INSERT: the cheapest way to store
            event = CallbackEvent.objects.create(**fields)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: signals.callback_stored.send(sender=CallbackEvent, event=event))
    logger.info("callback=%s type=%s outcome=stored", event.pk, parsed.event_type)
    return event


def process_event(event_pk: int) -> bool:
    """Apply a stored event once.  True if it was applied now, False if already done.

    Raises whatever went wrong after recording it on the row (state ``failed``).
    """
    try:
        with transaction.atomic():
            event = CallbackEvent.objects.select_for_update().get(pk=event_pk)
            if event.state == CallbackEvent.PROCESSED:
                return False
            parsed = parse_event(json.loads(event.body))
            case = find_case(parsed.case_id)
            _apply(parsed, case)
            event.state = CallbackEvent.PROCESSED
            event.processed_at = timezone.now()
            event.error = ""
            event.attempts += 1
            event.save(update_fields=["state", "processed_at", "error", "attempts"])
    except Exception as error:
        CallbackEvent.objects.filter(pk=event_pk).exclude(state=CallbackEvent.PROCESSED).update(
            state=CallbackEvent.FAILED, error=_failure_text(error), attempts=F("attempts") + 1
        )
        logger.warning("callback=%s outcome=failed error=%s", event_pk, type(error).__name__)
        raise
    logger.info("callback=%s type=%s outcome=processed", event_pk, parsed.event_type)
    return True


def _apply(event: ParsedEvent, case: Any) -> None:
    if event.event_type == SALES_ORDER:
        _sales_order(event, case)
    elif event.event_type == TREATMENT_PLAN:
        _treatment_plan(event, case)
    else:
        _status_changed(event, case)


def _sales_order(event: ParsedEvent, case: Any) -> None:
    data = event.data
    identity = {
        "case": case,
        "order_type": data["orderType"],
        "sales_order_number": data["salesOrderNumber"],
    }
    if AlignOrder.objects.filter(**identity).exists():
        return  # the same sales order under another webhook-id
    # A concurrent insert of the same sales order fails this event's transaction; the
    # event is then stored as failed and reprocessing finds the order already there.
    order = AlignOrder.objects.create(
        **identity, patient_id=data["patientId"], created_at=data["createdAt"]
    )
    record(
        case,
        "sales_order_received",
        CaseEvent.INFO,
        f"{order.order_type.capitalize()} sales order {order.sales_order_number} received.",
    )
    transaction.on_commit(
        lambda: signals.sales_order_received.send(sender=AlignOrder, case=case, align_order=order)
    )


def _locked_state(case: Any) -> AlignCase:
    state = AlignCase.objects.for_case(case)
    return AlignCase.objects.select_for_update().get(pk=state.pk)


def _treatment_plan(event: ParsedEvent, case: Any) -> None:
    data = event.data
    state = _locked_state(case)
    newer = state.treatment_plan_at is None or (
        (data["version"], data["createdAt"])
        > (state.treatment_plan_version or 0, state.treatment_plan_at)
    )
    same = (
        state.treatment_plan_id == data["planId"]
        and state.treatment_plan_version == data["version"]
    )
    if same or not newer:
        return
    state.treatment_plan_id = data["planId"]
    state.treatment_plan_version = data["version"]
    state.treatment_plan_at = data["createdAt"]
    state.awaiting_provider_review = True
    state.treatment_plan_viewer_url = data.get("viewerUrl", "")  # a newer plan without: none
    state.save(
        update_fields=[
            "treatment_plan_id",
            "treatment_plan_version",
            "treatment_plan_at",
            "awaiting_provider_review",
            "treatment_plan_viewer_url",
            "updated_at",
        ]
    )
    record(
        case,
        "treatment_plan_received",
        CaseEvent.INFO,
        f"Treatment plan {state.treatment_plan_id} version {state.treatment_plan_version} "
        "received; the case is in the provider portal for review.",
    )
    get_adapter().on_treatment_plan_ready(case)
    transaction.on_commit(
        lambda: signals.treatment_plan_received.send(
            sender=AlignCase,
            case=case,
            align_case=state,
            plan_id=data["planId"],
            version=data["version"],
        )
    )


def _status_changed(event: ParsedEvent, case: Any) -> None:
    data = event.data
    state = _locked_state(case)
    if state.status_changed_at is not None and data["changedAt"] <= state.status_changed_at:
        return  # an older (or the same) status never overwrites a newer one
    previous = state.status
    state.status = data["status"]
    state.status_changed_at = data["changedAt"]
    state.save(update_fields=["status", "status_changed_at", "updated_at"])
    if previous == state.status:
        return
    record(
        case,
        "status_changed",
        CaseEvent.INFO,
        f"Align status changed to {state.status!r}.",
    )
    transaction.on_commit(
        lambda: signals.case_status_changed.send(
            sender=AlignCase,
            case=case,
            align_case=state,
            status=state.status,
            previous_status=previous,
        )
    )


def reprocess(events: Any) -> tuple[int, int]:
    """Process the given stored events again; returns (processed, failed)."""
    processed = failed = 0
    for event in events:
        try:
            process_event(event.pk)
        except Exception:  # recorded on the row
            failed += 1
        else:
            processed += 1
    return processed, failed
