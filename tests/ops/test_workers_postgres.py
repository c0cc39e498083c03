"""Real worker processes on PostgreSQL: two and four ``align_worker --loop`` processes, and
two ``db_worker`` processes of django-tasks-db, working through the same due retries at
once.  Each retry is attempted once and each case accepted once at Align.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import time
from typing import Any

import pytest
from django.utils import timezone

from align_integration.models import RemoteOperation
from align_integration.workflows.clincheck import prepare_operation
from tests.ops.conftest import accepted_once, communicate, manage

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CASES = 24


def due_accepts(sent_case: Any, count: int) -> list[RemoteOperation]:
    """ClinCheck accepts whose retries are due (their first attempts never went out)."""
    operations = []
    for _ in range(count):
        operation = prepare_operation(sent_case(), "approve")
        RemoteOperation.objects.filter(pk=operation.pk).update(
            state=RemoteOperation.RETRY_SCHEDULED,
            next_attempt_at=timezone.now() - dt.timedelta(seconds=10),
        )
        operations.append(operation)
    return operations


def finish(process: subprocess.Popen[str], timeout: float = 90) -> str:
    code, output = communicate(process, timeout)
    assert code == 0, output
    return output


def assert_each_once(operations: list[RemoteOperation], align_sandbox: Any) -> None:
    rows = RemoteOperation.objects.filter(pk__in=[o.pk for o in operations])
    assert {(row.state, row.attempts) for row in rows} == {(RemoteOperation.SUCCEEDED, 1)}
    assert accepted_once(align_sandbox) == {str(o.case_id): 1 for o in operations}
    assert align_sandbox.count("clincheck_accept") == len(operations)


def attempted_by(output: str) -> int:
    """Operations a ``--loop`` worker attempted, from its pass lines."""
    return sum(int(n) for n in re.findall(r"operations attempted: (\d+)", output))


@pytest.mark.parametrize("count", [2, 4])
def test_align_workers_in_a_loop_never_run_one_retry_twice(
    shared_db: dict[str, str], sent_case: Any, align_sandbox: Any, count: int
) -> None:
    operations = due_accepts(sent_case, CASES)
    align_sandbox.inject_fault("clincheck_accept", delay=0.1, times=None)
    # Small batches, so every worker claims some while the others hold theirs.
    args = ("align_worker", "--loop", "--interval", "0.1", "--limit", "2", "--no-itero")
    workers = [manage(shared_db, *args) for _ in range(count)]
    try:
        deadline = time.monotonic() + 90
        pending = RemoteOperation.objects.filter(pk__in=[o.pk for o in operations]).exclude(
            state=RemoteOperation.SUCCEEDED
        )
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    outputs = [finish(worker) for worker in workers]
    attempted = [attempted_by(output) for output in outputs]
    assert sum(attempted) == CASES, outputs
    assert sum(count > 0 for count in attempted) >= 2, attempted  # they shared the work
    assert_each_once(operations, align_sandbox)


def test_two_db_workers_run_each_job_once(
    shared_db: dict[str, str], sent_case: Any, align_sandbox: Any, settings: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    from align_integration.tasks import retry_operation

    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    }
    operations = due_accepts(sent_case, CASES)
    for operation in operations + operations:  # every job enqueued twice: still one accept
        retry_operation.enqueue(operation.pk)
    align_sandbox.inject_fault("clincheck_accept", delay=0.15, times=None)
    env = {**shared_db, "ALIGN_TEST_TASKS": "db"}
    workers = [
        manage(env, "db_worker", "--batch", "--no-startup-delay", "--worker-id", f"w{n}")
        for n in range(2)
    ]
    for worker in workers:
        finish(worker)
    results = list(DBTaskResult.objects.all())
    assert len(results) == 2 * CASES
    assert {result.status for result in results} == {"SUCCESSFUL"}
    assert all(len(result.worker_ids) == 1 for result in results)  # each job run once
    assert {result.worker_ids[0] for result in results} == {"w0", "w1"}
    assert_each_once(operations, align_sandbox)
