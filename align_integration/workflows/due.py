"""Finding and taking due operations: retries whose time has come, and runs a dead process
left ``in_progress``.

Several workers (``align_worker`` on several machines, task workers) may look at the same
operation at once.  A worker *takes* due operations before running them: on PostgreSQL a
batch at a time, ``SELECT … FOR UPDATE SKIP LOCKED`` in a short transaction that moves
their ``next_attempt_at`` forward (a hold of ``WORKER_HOLD_SECONDS``); elsewhere one at a
time by a compare-and-set on the value read.  Only one worker takes a row, so one due
retry is attempted once.  The run then claims the row as usual (``operations._claim``),
which keeps a worker and a web request apart.

A run that dies mid-call leaves its operation ``in_progress``; once its claim
(``OPERATION_CLAIM_SECONDS``) has run out for ``OPERATION_TAKEOVER_SECONDS`` it is due
again: a worker takes it over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from align_integration.conf import get_setting
from align_integration.models import RemoteOperation

#: A task may run this much before ``next_attempt_at`` (clocks of machines differ a little).
EARLY_TOLERANCE_SECONDS = 2


def hold_seconds() -> int:
    return int(get_setting("WORKER_HOLD_SECONDS"))


def takeover_seconds() -> int:
    return int(get_setting("OPERATION_TAKEOVER_SECONDS"))


def _due(now: dt.datetime, early: float = 0) -> Q:
    """Retries due (``early`` seconds ahead allowed) and runs whose claim ran out more than
    ``OPERATION_TAKEOVER_SECONDS`` ago (the process running them died)."""
    abandoned_before = now - dt.timedelta(seconds=takeover_seconds())
    return Q(
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at__lte=now + dt.timedelta(seconds=early),
    ) | Q(state=RemoteOperation.IN_PROGRESS, claimed_until__lt=abandoned_before)


@dataclass
class Taken:
    """A due operation this worker holds until ``operation.next_attempt_at``;
    ``taken_over``: it was a crashed run's."""

    operation: RemoteOperation
    taken_over: bool


def take_due(operation: RemoteOperation, *, now: dt.datetime | None = None) -> bool:
    """Take a due (or abandoned) operation for this worker; False if another worker did.

    A compare-and-set on the value this worker read, so exactly one of several workers
    that read the same row wins.  (Where the database has ``SKIP LOCKED``,
    :func:`claim_due_operations` takes whole batches instead.)
    """
    now = now or timezone.now()
    hold_until = now + dt.timedelta(seconds=hold_seconds())
    rows = RemoteOperation.objects.filter(pk=operation.pk, state=operation.state)
    if operation.state == RemoteOperation.RETRY_SCHEDULED:
        due_by = now + dt.timedelta(seconds=EARLY_TOLERANCE_SECONDS)
        if operation.next_attempt_at is None or operation.next_attempt_at > due_by:
            return False
        taken = rows.filter(next_attempt_at=operation.next_attempt_at).update(
            next_attempt_at=hold_until
        )
    elif operation.state == RemoteOperation.IN_PROGRESS:
        abandoned_before = now - dt.timedelta(seconds=takeover_seconds())
        if operation.claimed_until is None or operation.claimed_until >= abandoned_before:
            return False
        taken = rows.filter(claimed_until=operation.claimed_until).update(
            state=RemoteOperation.RETRY_SCHEDULED, claimed_until=None, next_attempt_at=hold_until
        )
    else:
        return False
    if taken:
        operation.refresh_from_db()
    return bool(taken)


def _skip_locked() -> bool:
    connection = connections[router.db_for_write(RemoteOperation)]
    return bool(connection.features.has_select_for_update_skip_locked)


def claim_due_operations(
    limit: int = 100, *, pk: int | None = None, early: float = 0
) -> list[Taken]:
    """Take up to ``limit`` due operations (only ``pk``, if given) for this worker.

    On PostgreSQL one short transaction selects them ``FOR UPDATE SKIP LOCKED`` (rows
    another worker is claiming are passed over, not waited for) and marks them held for
    ``WORKER_HOLD_SECONDS``; elsewhere each is taken by a compare-and-set.  Either way one
    due operation is taken by one worker.
    """
    now = timezone.now()
    due = RemoteOperation.objects.filter(_due(now, early))
    if pk is not None:
        due = due.filter(pk=pk)
    if not _skip_locked():
        taken = []
        for operation in due.order_by("next_attempt_at", "pk")[:limit]:
            crashed = operation.state == RemoteOperation.IN_PROGRESS
            if take_due(operation, now=now):
                taken.append(Taken(operation, crashed))
        return taken
    hold_until = now + dt.timedelta(seconds=hold_seconds())
    with transaction.atomic(using=router.db_for_write(RemoteOperation)):
        rows = list(
            due.select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[:limit]
        )
        if rows:
            RemoteOperation.objects.filter(pk__in=[row.pk for row in rows]).update(
                state=RemoteOperation.RETRY_SCHEDULED,
                claimed_until=None,
                next_attempt_at=hold_until,
            )
    taken = []
    for row in rows:
        taken.append(Taken(row, row.state == RemoteOperation.IN_PROGRESS))
        row.state, row.claimed_until = RemoteOperation.RETRY_SCHEDULED, None
        row.next_attempt_at = hold_until
    return taken


def still_ours(operation: RemoteOperation) -> bool:
    """Whether this worker's hold on ``operation`` still stands (re-taken if it is close to
    running out, so a worker that took it after the hold cannot run it as well)."""
    held_until = operation.next_attempt_at
    if held_until is None:
        return False
    now = timezone.now()
    if now + dt.timedelta(seconds=hold_seconds() / 2) < held_until:
        return True  # well inside the hold: nobody else may take it
    renewed = now + dt.timedelta(seconds=hold_seconds())
    if RemoteOperation.objects.filter(
        pk=operation.pk, state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at=held_until
    ).update(next_attempt_at=renewed):
        operation.next_attempt_at = renewed
        return True
    return False


def due_operations(limit: int = 100) -> list[RemoteOperation]:
    """Operations whose retry is due, and ones a crashed worker abandoned, oldest first
    (a read: nothing is taken)."""
    due = RemoteOperation.objects.filter(_due(timezone.now()))
    return list(due.order_by("next_attempt_at", "pk")[:limit])
