"""The Celery adapter with a real Celery worker process and Redis as the broker.

Django's tasks framework hands the retry to Celery (``CeleryBackend``, deferred with
``eta``); the worker process runs the same idempotent job against the same database.  The
worker pass runs as a Celery task too.  Needs Redis and a database the worker process can
share (PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from align_integration import Align
from align_integration.models import RemoteOperation
from tests.ops.conftest import ROOT, accepted_once

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def celery_queue(redis_url: str) -> Iterator[str]:
    """A queue of its own on the test Redis, and the adapter's app pointed at that broker."""
    from align_integration.integrations.celery import app

    queue = f"align-test-{uuid.uuid4().hex[:8]}"
    previous = app.conf.broker_url
    app.conf.broker_url = redis_url
    try:
        yield queue
    finally:
        app.conf.broker_url = previous


@pytest.fixture
def celery_worker(
    shared_db: dict[str, str], redis_url: str, celery_queue: str
) -> Iterator[subprocess.Popen[str]]:
    env = {
        **shared_db,
        "ALIGN_TEST_BROKER_URL": redis_url,
        "ALIGN_TEST_CELERY_QUEUE": celery_queue,
        "ALIGN_TEST_TASKS": "celery",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "align_integration.integrations.celery",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            celery_queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield worker
    finally:
        worker.terminate()  # warm shutdown: the task in hand finishes
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()


def wait_for(condition: Any, worker: subprocess.Popen[str], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.poll() is not None:
            pytest.fail(f"the Celery worker exited:\n{worker.stdout.read()}")
        time.sleep(0.2)
    worker.terminate()
    pytest.fail(f"timed out; worker output:\n{worker.communicate(timeout=20)[0]}")


def test_retries_run_on_a_celery_worker(
    celery_worker: subprocess.Popen[str],
    celery_queue: str,
    sent_case: Any,
    align_sandbox: Any,
    settings: Any,
) -> None:
    settings.TASKS = {
        "default": {
            "BACKEND": "align_integration.integrations.celery.CeleryBackend",
            "OPTIONS": {"QUEUE": celery_queue},
        }
    }
    config = settings.ALIGN_INTEGRATION
    settings.ALIGN_INTEGRATION = {
        **config,
        "OPERATION_BACKOFF_BASE": 1,
        "SERVICE": {**config["SERVICE"], "RETRIES": 0},
    }
    cases = [sent_case() for _ in range(4)]
    align_sandbox.inject_fault("clincheck_accept", status=503, retry_after=3, times=None)
    for case in cases:  # fails now; the retry is enqueued on Celery, due in 3 s
        assert Align().set_case_status(None, case, "approve").status_code == 503
    align_sandbox.clear_faults()
    operations = RemoteOperation.objects.filter(case__in=cases, kind="clincheck_accept")
    assert {o.state for o in operations} == {RemoteOperation.RETRY_SCHEDULED}

    wait_for(
        lambda: all(o.state == RemoteOperation.SUCCEEDED for o in operations.all()),
        celery_worker,
    )
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
    for operation in operations:
        keys = {
            c.idempotency_key
            for c in align_sandbox.calls("clincheck_accept")
            if c.form["caseId"] == str(operation.case_id)
        }
        assert keys == {str(operation.idempotency_key)}


def test_worker_pass_runs_as_a_celery_task(
    celery_worker: subprocess.Popen[str],
    celery_queue: str,
    sent_case: Any,
    align_sandbox: Any,
) -> None:
    from align_integration.integrations.celery import WORKER_PASS, app
    from align_integration.workflows.clincheck import prepare_operation

    # A retry whose task was lost (no backend that defers): the periodic pass finds it.
    operation = prepare_operation(sent_case(), "approve")
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=timezone.now() - dt.timedelta(seconds=5),
    )
    app.send_task(WORKER_PASS, kwargs={"limit": 10}, queue=celery_queue)
    wait_for(
        lambda: RemoteOperation.objects.get(pk=operation.pk).state == RemoteOperation.SUCCEEDED,
        celery_worker,
    )
    assert align_sandbox.count("clincheck_accept") == 1


def test_backend_refuses_to_run_anything_but_a_django_task() -> None:
    from align_integration.integrations.celery import run_django_task

    with pytest.raises(TypeError, match="not a Django task"):
        run_django_task("os.getcwd", [], {})
