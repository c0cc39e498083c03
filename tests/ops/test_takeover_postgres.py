"""A worker killed (SIGKILL) while its create-patient call is in flight: another worker takes
the operation and the case over, reconciles with Align, and the case finishes with one
patient and one order.  Real processes on PostgreSQL; the claim and takeover periods are
shortened by settings (timings themselves belong in benchmarks/bench_worker.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest
from django.utils import timezone

from align_integration.models import AlignCase, RemoteOperation
from align_integration.workflows.operations import operation_for
from tests.ops.conftest import manage

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {"OPERATION_CLAIM_SECONDS": 3, "OPERATION_TAKEOVER_SECONDS": 1}
WORKER = ("align_worker", "--loop", "--interval", "0.2", "--no-itero", "-v", "2")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def test_killed_worker_mid_call_is_taken_over_with_nothing_doubled(
    shared_db: dict[str, str], make_case: Any, align_sandbox: Any
) -> None:
    align_sandbox.auto_callbacks = False
    case = make_case()
    operation = operation_for(case, RemoteOperation.CREATE_PATIENT, f"create_patient:{case.pk}")
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1),
    )
    # The service takes 1.5 s to answer, and acts even though the caller is gone by then.
    align_sandbox.inject_fault("create_patient", delay=1.5, times=1)
    env = {**shared_db, "ALIGN_TEST_SETTINGS": json.dumps(FAST)}

    doomed = manage(env, *WORKER)
    wait_for(lambda: align_sandbox.count("create_patient") == 1, 60, "the create-patient call")
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=30)
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.IN_PROGRESS  # left mid-call

    taker = manage(env, *WORKER)
    try:
        wait_for(
            lambda: AlignCase.objects.filter(case=case, assets_uploaded_at__isnull=False).exists(),
            60,
            "the case to be sent",
        )
    finally:
        output = stop(taker)
    assert len(align_sandbox.patients) == 1, output
    assert len(align_sandbox.orders) == 1, output
    assert align_sandbox.count("create_patient") == 1  # found at Align, not sent again
    state = AlignCase.objects.get(case=case)
    assert state.order_sent and state.lease_until is None
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
