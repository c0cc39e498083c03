"""Hands-free sending: an eligible case goes to Align from the background, exactly once.

Behind the waffle flag ``auto-send-to-align``.  ``cases.case_changed(case)`` (the host, or
an iTero scan landing on a case) leads to :func:`queue_auto_send`, which writes one
``RemoteOperation`` of kind ``auto_send`` per case (its unique dedupe key makes concurrent
calls write one row) and leaves it due for the worker.  The worker takes it once (the same
claim as every due operation) and runs :func:`run_auto_send`: the ordinary order flow,
whose own steps retry in the background on transient failures.  A case the flow refuses
(or that fails for good) is left for staff: the operation is parked as failed, with the
reason on the timeline, which the staff panel shows.

Never in a web request: :func:`queue_auto_send` only writes a row.  While the outbound
switch is paused the row stays due and runs once it is lifted.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import waffle
from django.db import transaction
from django.utils import timezone

from align_integration.cases import can_send_to_align
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.outbound import OutboundPaused
from align_integration.workflows.operations import announce_retry, claim_seconds, operation_for
from align_integration.workflows.orders.flow import initiate_align_order
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.orders")

FLAG = "auto-send-to-align"
ACTION = "auto_send"


def auto_send_enabled() -> bool:
    """The flag for everyone (a background decision has no request or user to test)."""
    flag = waffle.get_waffle_flag_model().get(FLAG)
    return bool(flag.pk and flag.everyone)


def queue_auto_send(case: Any) -> RemoteOperation | None:
    """Queue the case for sending when the flag is on and the case is eligible and unsent.

    Returns the (possibly existing) operation, or ``None`` when nothing was queued.  A case
    is auto-sent at most once: an earlier automatic attempt, done or failed, is final.
    """
    if not auto_send_enabled():
        return None
    state = AlignCase.objects.filter(case=case).first()
    if state is not None and state.order_sent:
        return None
    if not can_send_to_align(case).ok:
        return None
    operation = operation_for(case, RemoteOperation.AUTO_SEND, f"{ACTION}:{case.pk}")
    queued = RemoteOperation.objects.filter(
        pk=operation.pk, state=RemoteOperation.PENDING, attempts=0, next_attempt_at__isnull=True
    ).update(state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at=timezone.now())
    if queued:
        operation.refresh_from_db()
        record(case, ACTION, CaseEvent.INFO, "Eligible: queued to be sent automatically.")
        announce_retry(operation)
        logger.info("case=%s operation=%s outcome=auto_send_queued", case.pk, operation.pk)
    return operation


def run_auto_send(operation: RemoteOperation) -> bool:
    """The worker's job for an ``auto_send`` operation; True when the case was sent."""
    case = operation.case
    # Claimed like any operation, so a worker that dies here leaves work another takes over.
    RemoteOperation.objects.filter(pk=operation.pk).update(
        attempts=operation.attempts + 1,
        state=RemoteOperation.IN_PROGRESS,
        claimed_until=timezone.now() + dt.timedelta(seconds=claim_seconds()),
    )
    try:
        result = initiate_align_order(None, case)
    except OutboundPaused:  # switched on meanwhile: hand the row back, due as it was
        RemoteOperation.objects.filter(pk=operation.pk).update(
            attempts=operation.attempts,
            state=RemoteOperation.RETRY_SCHEDULED,
            claimed_until=None,
            next_attempt_at=timezone.now(),
        )
        operation.refresh_from_db()
        return False
    now = timezone.now()
    if result.ok:
        _finish(operation, RemoteOperation.SUCCEEDED, [], now)
        record(case, ACTION, CaseEvent.SUCCEEDED, "Sent to Align automatically.", status_code=200)
        return True
    retrying = RemoteOperation.objects.filter(
        case=case, state=RemoteOperation.RETRY_SCHEDULED
    ).exclude(pk=operation.pk)
    if retrying.exists():
        # A step failed for a transient reason and retries on its own: that is progress.
        _finish(operation, RemoteOperation.SUCCEEDED, [], now)
        record(
            case,
            ACTION,
            CaseEvent.INFO,
            "Sent automatically; a step is waiting for its background retry.",
            status_code=result.status_code,
        )
        return True
    errors = list(result.errors)[:5]
    _finish(operation, RemoteOperation.FAILED, errors, now, status=result.status_code)
    record(
        case,
        ACTION,
        CaseEvent.FAILED,
        "Automatic sending stopped; staff must act: " + "; ".join(errors),
        status_code=result.status_code,
    )
    return False


def _finish(
    operation: RemoteOperation,
    state: str,
    errors: list[str],
    now: Any,
    *,
    status: int | None = 200,
) -> None:
    with transaction.atomic():
        RemoteOperation.objects.filter(pk=operation.pk).update(
            state=state,
            last_errors=errors,
            last_status_code=status,
            next_attempt_at=None,
            claimed_until=None,
            finished_at=now,
        )
    operation.refresh_from_db()
