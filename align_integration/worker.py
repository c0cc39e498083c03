"""The worker: due retries of remote operations, stored callbacks, the iTero connector.

An entry point like the views and commands: it sits above ``workflows/`` and dispatches
each due operation to its flow through :data:`RESUME`, a table from operation kind to the
function that resumes it.

The database is the source of truth: a failed operation that may succeed later has state
``retry_scheduled`` and a ``next_attempt_at``; ``align_worker`` (and, where a task backend
that can defer is configured, a Django task) picks it up.  Jobs are plain idempotent
functions taking ids.

Several workers (``align_worker`` on several machines, task workers) may look at the same
operation at once: each *takes* due operations before running them
(:mod:`align_integration.workflows.due`: ``SKIP LOCKED`` batches on PostgreSQL, a
compare-and-set elsewhere), so one due retry is attempted once.  A run that died mid-call
is taken over once its claim has run out for ``OPERATION_TAKEOVER_SECONDS`` and runs at
once (the case's lease runs out with the claim), reconciling with Align first, so nothing
is done twice.

While outbound traffic is paused (switch ``align-outbound-paused``) nothing due is taken:
operations keep their ``next_attempt_at`` and attempts, iTero work waits, and all of it
runs on the first pass after the switch is off.  Stored callbacks (inbound) are still
processed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from align_integration.client.retry import doubling
from align_integration.client.service import AlignServiceClient
from align_integration.conf import get_setting
from align_integration.models import AlignCase, CallbackEvent, RemoteOperation
from align_integration.outbound import OutboundPaused, ensure_outbound_allowed, outbound_paused
from align_integration.workflows.callbacks.events import Reprocessed, reprocess
from align_integration.workflows.clincheck.review import perform_clincheck
from align_integration.workflows.due import (
    EARLY_TOLERANCE_SECONDS,
    Taken,
    claim_due_operations,
    still_ours,
    takeover_seconds,
)
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.orders.auto_send import run_auto_send
from align_integration.workflows.orders.flow import initiate_align_order
from align_integration.workflows.orders.uploads import is_current, perform_upload

logger = logging.getLogger("align_integration.worker")

Client = AlignServiceClient | None

#: Stored callbacks still ``received`` after this long were never processed (a crash).
CALLBACK_STUCK_SECONDS = 60
#: Failed callbacks are reprocessed this often at most, with backoff, before staff must act.
CALLBACK_MAX_ATTEMPTS = 8
CALLBACK_BACKOFF_SECONDS = 30


# -- running one operation -------------------------------------------------------------------
def _resume_order(operation: RemoteOperation, user: Any, client: Client) -> bool:
    """An order step: resume the whole order flow, which starts at the failed step."""
    return initiate_align_order(user, operation.case, client=client).ok


def _resume_upload(operation: RemoteOperation, user: Any, client: Client) -> bool:
    state = AlignCase.objects.filter(case_id=operation.case_id).first()
    order_sent = bool(state and state.order_sent)
    if not is_current(operation):
        # The case's files changed since: this upload will never be the right one.
        _park(operation, "Superseded: the case's files changed; upload the current ones.")
        if order_sent:
            return False
        return _resume_order(operation, user, client)
    if order_sent:  # a re-upload for a case already sent (align_upload_assets): this step only
        return perform_upload(operation, user=user, client=client).ok
    return _resume_order(operation, user, client)


def _resume_clincheck(operation: RemoteOperation, user: Any, client: Client) -> bool:
    return perform_clincheck(operation, user=user, client=client).ok


def _send_automatically(operation: RemoteOperation, user: Any, client: Client) -> bool:
    return run_auto_send(operation)


#: How each kind of operation is resumed (with the worker's client, or a new one when
#: ``None``); True when it is done.
RESUME: dict[str, Callable[[RemoteOperation, Any, Client], bool]] = {
    RemoteOperation.CREATE_PATIENT: _resume_order,
    RemoteOperation.CREATE_ORDER: _resume_order,
    RemoteOperation.UPLOAD_ASSETS: _resume_upload,
    RemoteOperation.CLINCHECK_ACCEPT: _resume_clincheck,
    RemoteOperation.CLINCHECK_REVISE: _resume_clincheck,
    RemoteOperation.AUTO_SEND: _send_automatically,
}


def run_operation_now(
    operation: RemoteOperation, *, user: Any = None, client: Client = None
) -> bool:
    """Attempt ``operation`` through its flow; True if it is done."""
    return RESUME[operation.kind](operation, user, client)


def _park(operation: RemoteOperation, reason: str) -> None:
    RemoteOperation.objects.filter(pk=operation.pk).exclude(state=RemoteOperation.SUCCEEDED).update(
        state=RemoteOperation.FAILED, next_attempt_at=None, last_errors=[reason]
    )
    operation.refresh_from_db()
    logger.info("operation=%s outcome=parked", operation.pk)


def _run_taken(taken: Taken, client: Client = None) -> bool:
    """Attempt a taken operation; True if this worker attempted it."""
    operation = taken.operation
    if not still_ours(operation):
        logger.info("operation=%s outcome=taken_by_another_worker", operation.pk)
        return False
    held_until = operation.next_attempt_at
    _attempt(operation, client=client)
    if taken.taken_over:
        # A crashed run's work that did not get going (its case still busy, say) is due
        # again soon, not after a whole hold.
        RemoteOperation.objects.filter(
            pk=operation.pk, state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at=held_until
        ).update(next_attempt_at=timezone.now() + dt.timedelta(seconds=takeover_seconds()))
    return True


def run_operation_job(operation_id: int) -> bool:
    """The task job: attempt the operation if its retry is due.  Idempotent, takes an id.

    The row is taken the way ``align_worker`` takes it, so one due operation gets one
    attempt however many task workers (or duplicated messages) run the job.  Returns True
    when the operation is done (now or before).  An operation that is not due (a newer
    retry was scheduled, it is parked as failed, or another worker has it) is left alone.
    """
    operation = RemoteOperation.objects.filter(pk=operation_id).only("state").first()
    if operation is None or operation.state == RemoteOperation.SUCCEEDED:
        return True
    if outbound_paused():  # left due: align_worker (or a later task) runs it afterwards
        logger.info("operation=%s job=paused", operation_id)
        return False
    taken = claim_due_operations(1, pk=operation_id, early=EARLY_TOLERANCE_SECONDS)
    if not taken:
        logger.info("operation=%s job=skipped state=%s", operation_id, operation.state)
        return False
    if not _run_taken(taken[0]):
        return False
    return RemoteOperation.objects.filter(pk=operation_id, state=RemoteOperation.SUCCEEDED).exists()


def _attempt(operation: RemoteOperation, *, user: Any = None, client: Client = None) -> bool:
    try:
        ok = run_operation_now(operation, user=user, client=client)
    except OutboundPaused:
        # Switched on after this worker took the operation: it is due again at once.
        RemoteOperation.objects.filter(
            pk=operation.pk, state=RemoteOperation.RETRY_SCHEDULED
        ).update(next_attempt_at=timezone.now())
        logger.info("operation=%s kind=%s outcome=paused", operation.pk, operation.kind)
        return False
    except Exception:  # a bug or the database: the row is retried once its claim runs out
        logger.exception("operation=%s kind=%s outcome=error", operation.pk, operation.kind)
        return False
    logger.info(
        "operation=%s kind=%s outcome=%s",
        operation.pk,
        operation.kind,
        "succeeded" if ok else "failed",
    )
    return ok


def run_due_operations(limit: int = 100) -> int:
    """Attempt up to ``limit`` due operations; returns how many this worker attempted.

    Safe with any number of workers at once, on any number of machines: each due
    operation is taken by one of them (:func:`claim_due_operations`).  While outbound
    traffic is paused nothing is taken: everything stays due.
    """
    if outbound_paused():
        logger.info("worker step=operations outcome=paused")
        return 0
    taken = claim_due_operations(limit)
    if not taken:
        return 0
    client = AlignServiceClient()  # one session (kept-alive connections) for the batch
    try:
        return sum(_run_taken(operation, client) for operation in taken)
    finally:
        client.close()


def retry_operations(operations: Any, *, user: Any = None) -> tuple[int, int]:
    """Retry the given operations now, whatever their schedule ("Retry now", ``--retry``).

    Returns ``(succeeded, failed)``; operations already succeeded are left out.  Raises
    :class:`~align_integration.outbound.OutboundPaused` while outbound traffic is paused.
    """
    ensure_outbound_allowed()
    succeeded = failed = 0
    for operation in operations:
        if operation.state == RemoteOperation.SUCCEEDED:
            continue
        if _attempt(operation, user=user):
            succeeded += 1
        else:
            failed += 1
    return succeeded, failed


# -- stored callbacks -------------------------------------------------------------------------
def due_callback_events(limit: int = 100) -> list[CallbackEvent]:
    """Callbacks never processed (still ``received`` after a minute), failed ones whose
    backoff (30 s, 60 s, 2 min… from receipt) has passed, up to the attempt limit, then
    unmatched ones (their case is resolved again on every pass)."""
    now = timezone.now()
    # Deferred processing leaves events "received" on purpose: they are due at once.
    wait = 0 if get_setting("CALLBACK_PROCESSING") == "deferred" else CALLBACK_STUCK_SECONDS
    stuck = list(
        CallbackEvent.objects.filter(
            state=CallbackEvent.RECEIVED,
            received_at__lte=now - dt.timedelta(seconds=wait),
        ).order_by("received_at", "pk")[:limit]
    )
    failed = CallbackEvent.objects.filter(
        state=CallbackEvent.FAILED, attempts__lt=CALLBACK_MAX_ATTEMPTS
    ).order_by("received_at", "pk")
    due = [
        event
        for event in failed[: limit * 4]
        if event.received_at
        <= now - dt.timedelta(seconds=doubling(event.attempts, base=CALLBACK_BACKOFF_SECONDS))
    ]
    chosen = (stuck + due)[:limit]
    if len(chosen) < limit:
        # Unmatched events: every pass tries to resolve their case again, the least tried
        # first, so a long list of them is gone through in turn.
        chosen += list(
            CallbackEvent.objects.filter(state=CallbackEvent.UNMATCHED).order_by(
                "attempts", "received_at", "pk"
            )[: limit - len(chosen)]
        )
    return chosen


def reprocess_due_callbacks(limit: int = 100) -> Reprocessed:
    """Process the due stored callbacks again, unmatched ones included."""
    events = due_callback_events(limit)
    return reprocess(events) if events else Reprocessed(0, 0, 0)


# -- one worker pass --------------------------------------------------------------------------
@dataclass
class WorkerPass:
    """What one pass of ``align_worker`` did."""

    operations: int = 0
    callbacks_processed: int = 0
    callbacks_failed: int = 0
    callbacks_unmatched: int = 0
    itero: int = 0
    errors: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.operations or self.callbacks_processed or self.callbacks_failed)

    def __str__(self) -> str:
        return (
            f"operations attempted: {self.operations}; callbacks processed: "
            f"{self.callbacks_processed}, failed: {self.callbacks_failed}, "
            f"still unmatched: {self.callbacks_unmatched}; "
            f"iTero items: {self.itero}"
        )


def run_itero_work() -> int:
    """The iTero connector's pass, when the connector is configured (and not paused)."""
    if not get_setting("ITERO", "CLIENT_ID"):
        return 0
    return int(run_due_itero_work())


def run_worker_pass(limit: int = 100, *, itero: bool = True) -> WorkerPass:
    """Everything due, once: retries, stored callbacks, the iTero connector.

    A step that raises is logged and counted in ``errors``; the other steps still run.
    """
    result = WorkerPass()
    steps: list[tuple[str, Any]] = [
        ("operations", lambda: setattr(result, "operations", run_due_operations(limit))),
        ("callbacks", lambda: _callbacks_step(result, limit)),
    ]
    if itero:
        steps.append(("itero", lambda: setattr(result, "itero", run_itero_work())))
    for name, step in steps:
        try:
            step()
        except Exception:
            result.errors += 1
            logger.exception("worker step=%s outcome=error", name)
    return result


def _callbacks_step(result: WorkerPass, limit: int) -> None:
    done = reprocess_due_callbacks(limit)
    result.callbacks_processed, result.callbacks_failed = done.processed, done.failed
    result.callbacks_unmatched = done.unmatched
