"""Hands-free sending (flag ``auto-send-to-align``): an eligible case goes to Align from the
background machinery, exactly once, and a case the flow refuses is left for staff."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from align_integration.cases import case_changed
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.worker import run_due_operations

FLAG = "auto-send-to-align"


def auto_send_rows(case: Any) -> list[RemoteOperation]:
    return list(RemoteOperation.objects.filter(case=case, kind=RemoteOperation.AUTO_SEND))


@pytest.mark.django_db
def test_with_the_flag_off_nothing_is_queued(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    case_changed(case)
    assert auto_send_rows(case) == []
    assert run_due_operations() == 0
    assert align_sandbox.count("create_patient") == 0


@pytest.mark.django_db
def test_an_eligible_case_is_queued_not_sent_in_the_request_then_sent_by_the_worker(
    align_sandbox: Any, make_case: Any, flags: Any
) -> None:
    flags(FLAG)
    case = make_case()
    case_changed(case)
    [operation] = auto_send_rows(case)
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    assert align_sandbox.count("create_patient") == 0  # nothing left in the caller's request

    assert run_due_operations() == 1
    assert AlignCase.objects.get(case=case).order_sent
    assert align_sandbox.count("create_patient") == align_sandbox.count("create_order") == 1
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    messages = list(CaseEvent.objects.filter(case=case, action="auto_send").values_list("message"))
    assert ("Sent to Align automatically.",) in messages

    case_changed(case)  # already sent: nothing more
    assert run_due_operations() == 0
    assert align_sandbox.count("create_patient") == 1


@pytest.mark.django_db
def test_an_ineligible_case_is_not_queued_until_it_becomes_eligible(
    align_sandbox: Any, make_case: Any, flags: Any
) -> None:
    flags(FLAG)
    case = make_case(approved=False)
    case_changed(case)
    assert auto_send_rows(case) == []
    case.photo_assessment.approved = True
    case.photo_assessment.save()
    case_changed(case)
    assert len(auto_send_rows(case)) == 1


@pytest.mark.django_db
def test_a_case_the_flow_refuses_is_left_for_staff_with_the_reason(
    align_sandbox: Any, make_case: Any, flags: Any
) -> None:
    flags(FLAG)
    case = make_case(mrn="")  # Align needs the medical record number
    case_changed(case)
    assert run_due_operations() == 1
    [operation] = auto_send_rows(case)
    assert operation.state == RemoteOperation.FAILED
    assert operation.next_attempt_at is None
    failed = CaseEvent.objects.get(case=case, action="auto_send", outcome=CaseEvent.FAILED)
    assert "staff must act" in failed.message
    assert "medical record number" in failed.message
    assert align_sandbox.count("create_patient") == 0

    case_changed(case)  # a failed automatic send is final: staff send it by hand
    assert run_due_operations() == 0
    assert len(auto_send_rows(case)) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_and_scan_arrivals_send_once(
    align_sandbox: Any, make_case: Any, flags: Any, postgres: None
) -> None:
    flags(FLAG)
    case = make_case()
    barrier = threading.Barrier(6)

    def change() -> None:
        try:
            barrier.wait()
            case_changed(case)
        finally:
            connection.close()

    def drain() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                run_due_operations()
        finally:
            connection.close()

    threads = [threading.Thread(target=change) for _ in range(4)]
    threads += [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_due_operations()
    assert len(auto_send_rows(case)) == 1
    assert AlignCase.objects.get(case=case).order_sent
    assert align_sandbox.count("create_patient") == 1
    assert align_sandbox.count("create_order") == 1
