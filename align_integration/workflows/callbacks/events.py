"""Receiving callbacks from the Align integration service: store once, apply once.

The endpoint (``views.callbacks``) verifies the signature and the body's shape, then:

- inline processing (the default), :func:`ingest`: find the case (one query for a case
  the app sent), apply the event and store its ``CallbackEvent`` as ``processed``.  A
  sales order is one ``INSERT … ON CONFLICT DO NOTHING`` and the event row another, in
  that order and without a transaction: the effect is safe to repeat, so a crash between
  the two leaves a redelivery to store the receipt and nothing doubled.  Plans and
  statuses run in one transaction that stores the event first, so a redelivery stops at
  its unique ``webhook_id``.
- deferred processing, :func:`store_for_later`: one INSERT, answered at once, applied by
  a task or ``align_worker`` with :func:`process_event`.

A verified event whose case cannot be resolved is stored ``unmatched`` (answered 202) and
resolved again by every ``align_worker`` pass and by the admin's "Reprocess"; it is
applied once its case is known.  A failure while applying leaves the row ``failed`` with
the error (no patient data), for the worker's backoff or the admin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from align_integration import signals
from align_integration.adapters import get_adapter
from align_integration.models import AlignOrder, CallbackEvent
from align_integration.workflows.callbacks import fastpath
from align_integration.workflows.callbacks.effects import apply_event, apply_sales_order
from align_integration.workflows.callbacks.parsing import (
    EVENT_TYPES,
    MAX_INT,
    SALES_ORDER,
    STATUS_CHANGED,
    TREATMENT_PLAN,
    InvalidEvent,
    ParsedEvent,
    parse_event,
)
from align_integration.workflows.callbacks.storage import insert_unless_exists

__all__ = [
    "EVENT_TYPES",
    "MAX_INT",
    "SALES_ORDER",
    "STATUS_CHANGED",
    "TREATMENT_PLAN",
    "InvalidEvent",
    "ParsedEvent",
    "ProcessingFailed",
    "Reprocessed",
    "find_case",
    "ingest",
    "parse_event",
    "process_event",
    "reprocess",
    "store_for_later",
]

logger = logging.getLogger("align_integration.callbacks")

PROCESSED_NOW = "processed"
ALREADY_DONE = "done"
UNMATCHED = "unmatched"


def find_case(case_id: str) -> Any | None:
    """The host case for a ``caseId``, or ``None`` when no case answers to it (yet).

    One query for a case the app sent (``CaseAdapter.case_for_reference``), which also
    brings the case's ``AlignCase`` along for the plan and status updates.
    """
    try:
        return get_adapter().case_for_reference(case_id)
    except LookupError:
        return None


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


class _Duplicate(Exception):
    """The webhook-id was stored by an earlier (or concurrent) delivery: undo, answer 2xx."""


def _receipt(
    webhook_id: str, parsed: ParsedEvent, body: str, headers: dict[str, str], **state: Any
) -> CallbackEvent:
    return CallbackEvent(
        webhook_id=webhook_id,
        event_type=parsed.event_type,
        case_reference=parsed.case_id,
        body=body,
        headers=headers,
        **state,
    )


def _contained() -> AbstractContextManager[Any]:
    """A savepoint only inside a caller's transaction (``ATOMIC_REQUESTS``), where a failed
    statement must not break it; in autocommit, nothing."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def _store(event: CallbackEvent) -> bool:
    """Store the event row; False when its ``webhook_id`` is stored already (one statement)."""
    return insert_unless_exists(event, ["webhook_id"])


def ingest(
    webhook_id: str, parsed: ParsedEvent, body: str, headers: dict[str, str]
) -> CallbackEvent | None:
    """Inline processing: resolve the case, apply the event, store it; ``None`` for a
    duplicate ``webhook_id``.

    The event comes back ``processed``, or ``unmatched`` when no case answers to its
    ``caseId``.  If applying fails, the event is stored ``failed`` with the error and
    :class:`ProcessingFailed` is raised.
    """
    if fastpath.applies(parsed):
        try:
            with _contained():
                fast = fastpath.store_sales_order(webhook_id, parsed, body, headers)
        except Exception:  # e.g. a case deleted meanwhile: the general path records it
            logger.warning("callback type=%s fastpath=failed", parsed.event_type, exc_info=True)
            fast = None
        if fast is not None:
            return _fast_outcome(fast, webhook_id, parsed, body, headers)
    case = find_case(parsed.case_id)
    if case is None:
        event = _receipt(webhook_id, parsed, body, headers, state=CallbackEvent.UNMATCHED)
        if not _store(event):
            return None
        logger.info("callback=%s type=%s outcome=unmatched", event.pk, parsed.event_type)
        return event
    event = _receipt(
        webhook_id,
        parsed,
        body,
        headers,
        state=CallbackEvent.PROCESSED,
        processed_at=timezone.now(),
        attempts=1,
    )
    try:
        if parsed.event_type == SALES_ORDER:
            with _contained():
                apply_sales_order(parsed, case)  # the effect first: safe to repeat
                stored = _store(event)
        else:
            with transaction.atomic():
                if not _store(event):
                    raise _Duplicate
                apply_event(parsed, case)
            stored = True
    except _Duplicate:
        stored = False
    except Exception as error:
        failed = _receipt(
            webhook_id,
            parsed,
            body,
            headers,
            state=CallbackEvent.FAILED,
            error=_failure_text(error),
            attempts=1,
        )
        if not _store(failed):
            return None  # the same delivery, stored by a concurrent request
        logger.warning("callback=%s outcome=failed error=%s", failed.pk, type(error).__name__)
        raise ProcessingFailed(failed, error) from error
    if not stored:
        return None
    logger.info("callback=%s type=%s outcome=processed", event.pk, parsed.event_type)
    return event


def _fast_outcome(
    fast: fastpath.FastOutcome,
    webhook_id: str,
    parsed: ParsedEvent,
    body: str,
    headers: dict[str, str],
) -> CallbackEvent | None:
    """The event row the fast path stored (``None``: a redelivery), and the signal for a
    new sales order (the case is read only when someone listens)."""
    if fast.event_pk is None:
        return None
    event = _receipt(webhook_id, parsed, body, headers, state=CallbackEvent.PROCESSED, attempts=1)
    event.pk = fast.event_pk
    event._state.adding = False
    if fast.order_pk is not None and signals.sales_order_received.has_listeners():
        case = get_adapter().case_for_reference(parsed.case_id)
        data = parsed.data
        order = AlignOrder(
            pk=fast.order_pk,
            case=case,
            order_type=data["orderType"],
            sales_order_number=data["salesOrderNumber"],
            patient_id=data["patientId"],
            created_at=data["createdAt"],
        )
        order._state.adding = False
        transaction.on_commit(
            lambda: signals.sales_order_received.send(
                sender=AlignOrder, case=case, align_order=order
            )
        )
    logger.info("callback=%s type=%s outcome=processed", event.pk, parsed.event_type)
    return event


def store_for_later(
    webhook_id: str, parsed: ParsedEvent, body: str, headers: dict[str, str]
) -> CallbackEvent | None:
    """Deferred processing: store the validated event (``received``) and announce it.

    One statement; returns ``None`` for a duplicate ``webhook_id``.  A task or
    ``align_worker`` applies it with :func:`process_event` (resolving its case then).
    """
    event = _receipt(webhook_id, parsed, body, headers)
    if not _store(event):
        return None
    transaction.on_commit(lambda: signals.callback_stored.send(sender=CallbackEvent, event=event))
    logger.info("callback=%s type=%s outcome=stored", event.pk, parsed.event_type)
    return event


def _process(event_pk: int) -> str:
    """Apply a stored event once: :data:`PROCESSED_NOW`, :data:`ALREADY_DONE` or
    :data:`UNMATCHED` (its case is still unknown).  Raises after recording a failure."""
    try:
        with transaction.atomic():
            event = CallbackEvent.objects.select_for_update().filter(pk=event_pk).first()
            if event is None or event.state == CallbackEvent.PROCESSED:
                return ALREADY_DONE
            parsed = parse_event(json.loads(event.body))
            case = find_case(parsed.case_id)
            if case is None:
                CallbackEvent.objects.filter(pk=event_pk).update(
                    state=CallbackEvent.UNMATCHED, error="", attempts=F("attempts") + 1
                )
                return UNMATCHED
            apply_event(parsed, case)
            CallbackEvent.objects.filter(pk=event_pk).update(
                state=CallbackEvent.PROCESSED,
                processed_at=timezone.now(),
                error="",
                attempts=F("attempts") + 1,
            )
    except Exception as error:
        CallbackEvent.objects.filter(pk=event_pk).exclude(state=CallbackEvent.PROCESSED).update(
            state=CallbackEvent.FAILED, error=_failure_text(error), attempts=F("attempts") + 1
        )
        logger.warning("callback=%s outcome=failed error=%s", event_pk, type(error).__name__)
        raise
    logger.info("callback=%s type=%s outcome=processed", event_pk, parsed.event_type)
    return PROCESSED_NOW


def process_event(event_pk: int) -> bool:
    """Apply a stored event once.  True if it was applied now; False if it was applied
    before or its case is still unknown (it stays ``unmatched``).

    Raises whatever went wrong after recording it on the row (state ``failed``).
    """
    return _process(event_pk) == PROCESSED_NOW


class Reprocessed(NamedTuple):
    """What :func:`reprocess` did: applied now (or found done), failed, still unmatched."""

    processed: int
    failed: int
    unmatched: int


def reprocess(events: Iterable[CallbackEvent]) -> Reprocessed:
    """Process the given stored events again (resolving unmatched ones' cases)."""
    processed = failed = unmatched = 0
    for event in events:
        try:
            outcome = _process(event.pk)
        except Exception:  # recorded on the row
            failed += 1
            continue
        if outcome == UNMATCHED:
            unmatched += 1
        else:
            processed += 1
    return Reprocessed(processed, failed, unmatched)
