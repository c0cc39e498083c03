"""Background work on remote operations.

The database is the source of truth: a failed operation that may succeed later has state
``retry_scheduled`` and a ``next_attempt_at``; ``align_worker`` (and, where a task backend
that can defer is configured, a Django task) picks it up.  Jobs are plain idempotent
functions taking ids.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from align_integration.models import RemoteOperation

logger = logging.getLogger("align_integration.worker")

ORDER_KINDS = (
    RemoteOperation.CREATE_PATIENT,
    RemoteOperation.CREATE_ORDER,
    RemoteOperation.UPLOAD_ASSETS,
)


def run_operation_now(operation: RemoteOperation, *, user: Any = None) -> bool:
    """Attempt ``operation`` (resuming the whole order flow for order steps); True if done."""
    if operation.kind in ORDER_KINDS:
        from align_integration.workflows.orders import initiate_align_order

        return initiate_align_order(user, operation.case).ok
    from align_integration.workflows.clincheck import perform_clincheck

    return perform_clincheck(operation, user=user).ok


def run_operation_job(operation_id: int) -> bool:
    """The job: idempotent, takes an id, safe to run twice."""
    operation = RemoteOperation.objects.filter(pk=operation_id).first()
    if operation is None or operation.state == RemoteOperation.SUCCEEDED:
        return True
    return run_operation_now(operation)


def run_due_operations(limit: int = 100) -> int:
    """Attempt every operation whose retry is due; returns how many were attempted."""
    attempted = 0
    for operation in RemoteOperation.objects.due().order_by("next_attempt_at")[:limit]:
        attempted += 1
        ok = run_operation_now(operation)
        logger.info(
            "operation=%s kind=%s outcome=%s",
            operation.pk,
            operation.kind,
            "succeeded" if ok else "failed",
        )
    return attempted


def enqueue_operation(operation: RemoteOperation) -> None:
    """Ask the task backend to run the retry when it is due (after commit).

    Without a backend that can defer, nothing is enqueued: ``align_worker`` finds the
    operation by ``next_attempt_at``.
    """
    from align_integration.tasks import enqueue_operation_retry

    operation_id, run_after = operation.pk, operation.next_attempt_at
    transaction.on_commit(lambda: enqueue_operation_retry(operation_id, run_after))
