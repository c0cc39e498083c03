"""``align_worker`` and the background jobs: due retries, stored callbacks, hand retries,
the loop's clean stop, taking an operation once, enqueueing on a deferring backend."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import threading
from typing import Any

import django
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from align_integration import Align
from align_integration import worker as background
from align_integration.models import CallbackEvent, RemoteOperation
from align_integration.workflows import due as due_work

pytestmark = pytest.mark.django_db

DUMMY_BACKEND = (
    "django.tasks.backends.dummy.DummyBackend"
    if django.VERSION >= (6, 0)
    else "django_tasks.backends.dummy.DummyBackend"
)


def failed_accept(sent_case: Any, align_sandbox: Any, status: int = 503) -> RemoteOperation:
    """A case whose ClinCheck accept failed and waits for its background retry."""
    case = sent_case()
    align_sandbox.inject_fault("clincheck_accept", status=status, times=4)
    assert not Align().set_case_status(None, case, "approve").ok
    align_sandbox.clear_faults()
    return RemoteOperation.objects.get(case=case, kind=RemoteOperation.CLINCHECK_ACCEPT)


def make_due(operation: RemoteOperation) -> None:
    RemoteOperation.objects.filter(pk=operation.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=5)
    )
    operation.refresh_from_db()


def stored_callback(case: Any, *, state: str, attempts: int, age: int) -> CallbackEvent:
    body = {
        "type": "case.status_changed",
        "data": {
            "caseId": str(case.pk),
            "status": "in_production",
            "changedAt": "2030-01-01T00:00:00Z",
        },
    }
    event = CallbackEvent.objects.create(
        webhook_id=f"msg_{case.pk}_{state}",
        event_type="case.status_changed",
        case_reference=str(case.pk),
        body=json.dumps(body),
        state=state,
        attempts=attempts,
    )
    CallbackEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - dt.timedelta(seconds=age)
    )
    return event


def worker(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("align_worker", *args, stdout=out, stderr=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_once_runs_due_retries_and_stored_callbacks(
    sent_case: Any, align_sandbox: Any, make_case: Any
) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    later = failed_accept(sent_case, align_sandbox)  # its retry is not due yet
    make_due(operation)
    stuck = stored_callback(make_case(), state=CallbackEvent.RECEIVED, attempts=0, age=120)
    fresh = stored_callback(make_case(), state=CallbackEvent.RECEIVED, attempts=0, age=5)
    failed = stored_callback(make_case(), state=CallbackEvent.FAILED, attempts=1, age=40)
    tired = stored_callback(make_case(), state=CallbackEvent.FAILED, attempts=8, age=10**6)

    code, out = worker("--once")
    assert code == 0, out
    assert "operations attempted: 1; callbacks processed: 2, failed: 0" in out
    operation.refresh_from_db()
    later.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    assert later.state == RemoteOperation.RETRY_SCHEDULED
    states = {e.pk: e.state for e in CallbackEvent.objects.all()}
    assert states[stuck.pk] == states[failed.pk] == CallbackEvent.PROCESSED
    assert states[fresh.pk] == CallbackEvent.RECEIVED  # the view may still be on it
    assert states[tired.pk] == CallbackEvent.FAILED  # staff reprocess it from the admin
    assert worker("--once")[1].startswith("align_worker: operations attempted: 0")


def test_callback_backoff_grows_with_attempts(make_case: Any) -> None:
    early = stored_callback(make_case(), state=CallbackEvent.FAILED, attempts=3, age=100)
    due = stored_callback(make_case(), state=CallbackEvent.FAILED, attempts=3, age=130)
    assert [e.pk for e in background.due_callback_events()] == [due.pk]
    assert early.pk not in [e.pk for e in background.due_callback_events()]


def test_retry_failed_by_hand(sent_case: Any, align_sandbox: Any) -> None:
    parked = failed_accept(sent_case, align_sandbox, status=422)
    assert parked.state == RemoteOperation.FAILED
    other = failed_accept(sent_case, align_sandbox, status=422)
    align_sandbox.inject_fault("clincheck_accept", status=422, times=1)
    code, out = worker("--retry-failed", "--kind", "clincheck_accept")
    assert code == 1 and "retried 2 operations: 1 succeeded, 1 failed" in out
    states = sorted(
        RemoteOperation.objects.filter(pk__in=[parked.pk, other.pk]).values_list("state", flat=True)
    )
    assert states == [RemoteOperation.FAILED, RemoteOperation.SUCCEEDED]
    still = RemoteOperation.objects.get(pk__in=[parked.pk, other.pk], state=RemoteOperation.FAILED)
    assert worker("--retry", str(still.pk))[0] == 0
    still.refresh_from_db()
    assert still.state == RemoteOperation.SUCCEEDED
    assert worker("--retry-failed")[1].endswith("retried 0 operations: 0 succeeded, 0 failed\n")


def test_loop_stops_cleanly_on_sigterm(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    make_due(operation)
    timer = threading.Timer(0.6, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code, out = worker("--loop", "--interval", "0.1")
    finally:
        timer.cancel()
    assert code == 0
    assert "operations attempted: 1" in out
    assert "align_worker: stopped after" in out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM)
    )
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED


def test_an_operation_is_taken_by_one_worker(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    make_due(operation)
    first = RemoteOperation.objects.get(pk=operation.pk)
    second = RemoteOperation.objects.get(pk=operation.pk)  # another worker read the same row
    assert due_work.take_due(first)
    assert not due_work.take_due(second)
    assert not due_work.take_due(RemoteOperation.objects.get(pk=operation.pk))  # held now


def test_job_leaves_an_operation_alone_when_not_due(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    calls = align_sandbox.count("clincheck_accept")
    assert background.run_operation_job(operation.pk) is False
    assert align_sandbox.count("clincheck_accept") == calls
    make_due(operation)
    assert background.run_operation_job(operation.pk) is True
    assert background.run_operation_job(operation.pk) is True  # done: a no-op
    assert align_sandbox.count("clincheck_accept") == calls + 1
    assert background.run_operation_job(10**9) is True  # gone: nothing to do


def test_abandoned_operation_is_picked_up(sent_case: Any, align_sandbox: Any) -> None:
    operation = failed_accept(sent_case, align_sandbox)
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.IN_PROGRESS,
        next_attempt_at=None,
        claimed_until=timezone.now() - dt.timedelta(minutes=5),
    )
    assert [o.pk for o in due_work.due_operations()] == [operation.pk]
    assert background.run_due_operations() == 1
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED


def test_retry_is_enqueued_after_commit_on_a_deferring_backend(
    sent_case: Any,
    align_sandbox: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from align_integration.tasks import task_backend

    settings.TASKS = {"default": {"BACKEND": DUMMY_BACKEND}}
    case = sent_case()
    align_sandbox.inject_fault("clincheck_accept", status=503, retry_after=120, times=4)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert not Align().set_case_status(None, case, "approve").ok
        assert task_backend().results == []  # nothing before commit
    assert callbacks
    operation = RemoteOperation.objects.get(case=case, kind=RemoteOperation.CLINCHECK_ACCEPT)
    [result] = task_backend().results
    assert result.task.module_path == "align_integration.tasks.retry_operation"
    assert result.args == [operation.pk]
    assert result.task.run_after == operation.next_attempt_at
    assert operation.next_attempt_at >= timezone.now() + dt.timedelta(seconds=100)


def test_immediate_backend_leaves_retries_to_the_worker(
    sent_case: Any, align_sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from align_integration.tasks import backend_can_defer, enqueue_operation_retry

    assert not backend_can_defer()
    assert enqueue_operation_retry(1, timezone.now()) is None


def test_worker_pass_counts_a_failing_step(monkeypatch: Any) -> None:
    def broken(limit: int) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(background, "run_due_operations", broken)
    code, out = worker("--once", "--no-itero")
    assert code == 1 and "1 step(s) failed" in out


def test_an_upload_for_files_since_replaced_is_parked(sent_case: Any, align_sandbox: Any) -> None:
    from django.core.files.base import ContentFile

    from align_integration.models import CaseAsset
    from align_integration.workflows.batch.actions import upload_case_assets

    case = sent_case(screenshot=False)
    rescan = CaseAsset(case=case, kind=CaseAsset.STL, content_type="model/stl")
    rescan.file.save("rescan.stl", ContentFile(b"solid x\nendsolid x\n"), save=True)
    align_sandbox.inject_fault("upload_assets", status=503, times=4)
    assert not upload_case_assets(case).ok
    operation = RemoteOperation.objects.get(case=case, state=RemoteOperation.RETRY_SCHEDULED)
    CaseAsset.objects.filter(pk=rescan.pk).update(date_removed=timezone.now())  # replaced
    make_due(operation)
    uploads = align_sandbox.count("upload_assets")
    assert background.run_due_operations() == 1
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.FAILED
    assert operation.last_errors[0].startswith("Superseded")
    assert align_sandbox.count("upload_assets") == uploads
    assert due_work.due_operations() == []
