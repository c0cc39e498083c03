"""The kill switch ``align-outbound-paused``: while it is on, nothing leaves for Align or
iTero from any path, and nothing is lost: web entry points answer 503, batch rows are
``paused`` (no attempt spent, non-zero exit), the worker and tasks leave due work due,
receivers keep the work for later, ``align_doctor`` says so; once it is off, what waited
runs.  The iTero paths are in tests/itero/test_paused.py."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from waffle.testutils import override_switch

from align_integration import Align, tasks
from align_integration.client.itero import IteroClient
from align_integration.client.service import AlignServiceClient
from align_integration.models import (
    AlignCase,
    CaseAsset,
    CaseEvent,
    RemoteOperation,
)
from align_integration.outbound import SWITCH, OutboundPaused
from align_integration.signals import aligners_purchased
from align_integration.worker import retry_operations, run_due_operations, run_worker_pass
from tests.commands import batch
from tests.images import jpeg_data_url
from tests.users import STAFF_PERMISSIONS, grant

pytestmark = pytest.mark.django_db

paused = override_switch(SWITCH, active=True)


def outbound_calls(sandbox: Any) -> list[str]:
    """Everything the app sent to the sandbox (Align and iTero)."""
    return [recorded.call for recorded in sandbox.requests]


@pytest.fixture
def staff(client: Client, django_user_model: Any, flags: Any) -> Client:
    flags("initiate-align-order")
    flags("set-align-order-status")
    user = django_user_model.objects.create_user("ops", is_staff=True)
    client.force_login(grant(user, *STAFF_PERMISSIONS))
    return client


@pytest.fixture
def due_retry(align_sandbox: Any, make_case: Any) -> RemoteOperation:
    """A case whose create-patient failed with a 503 and waits for its background retry."""
    case = make_case()
    align_sandbox.inject_fault("create_patient", status=503, times=None)
    Align().initiate_align_order(None, case)
    align_sandbox.clear_faults()
    operation = RemoteOperation.objects.get(case=case, kind="create_patient")
    due_at = timezone.now() - dt.timedelta(minutes=1)
    RemoteOperation.objects.filter(pk=operation.pk).update(next_attempt_at=due_at)
    operation.refresh_from_db()
    align_sandbox.reset()
    return operation


# -- web ----------------------------------------------------------------------------------------
def test_staff_send_answers_503_and_sends_nothing(
    align_sandbox: Any, make_case: Any, staff: Client
) -> None:
    case = make_case()
    url = reverse("align_integration:staff-align-initiate-order", kwargs={"case_ref": case.uuid})
    with paused:
        answer = staff.post(url, HTTP_ACCEPT="application/json")
        page = staff.post(url)
        panel = staff.get(
            reverse("align_integration:staff-align-panel", kwargs={"case_ref": case.uuid})
        )
    assert answer.status_code == 503
    assert answer.json()["ok"] is False and SWITCH in answer.json()["errors"][0]
    assert page.status_code == 503 and "paused" in page.content.decode()
    assert 'id="align-send" disabled' in panel.content.decode()
    assert not outbound_calls(align_sandbox)
    assert not RemoteOperation.objects.filter(case=case).exists()
    assert CaseEvent.objects.filter(case=case, status_code=503, outcome="skipped").exists()
    # Once the switch is off, the same button sends.
    assert staff.post(url, HTTP_ACCEPT="application/json").status_code == 200
    assert align_sandbox.count("create_patient") == 1


def test_provider_approve_and_revise_answer_503_and_store_nothing(
    align_sandbox: Any, make_case: Any, provider: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    case = make_case(provider=provider)
    AlignCase.objects.create(
        case=case, treatment_plan_id="PL-1", treatment_plan_version=1, awaiting_provider_review=True
    )
    doctor = Client()
    doctor.force_login(provider.user)
    url = reverse("align_integration:provider-case-action", kwargs={"case_ref": case.uuid})
    with paused:
        approve = doctor.post(url, {"action": "approve", "acceptance_screenshot": jpeg_data_url()})
        revise = doctor.post(
            url, {"action": "revise", "comment": "Close the gap"}, HTTP_ACCEPT="application/json"
        )
    assert approve.status_code == 503 and "paused" in approve.content.decode()
    assert revise.status_code == 503 and SWITCH in revise.json()["errors"][0]
    assert not CaseAsset.objects.filter(case=case).exclude(kind=CaseAsset.STL).exists()
    assert not RemoteOperation.objects.filter(case=case).exists()
    assert AlignCase.objects.get(case=case).awaiting_provider_review
    assert not outbound_calls(align_sandbox)


def test_the_python_api_raises_outbound_paused(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    with paused, pytest.raises(OutboundPaused) as raised:
        Align().initiate_align_order(None, case)
    assert raised.value.status_code == 503
    assert not outbound_calls(align_sandbox)


# -- batch --------------------------------------------------------------------------------------
def test_batch_rows_are_paused_without_spending_an_attempt(
    align_sandbox: Any, make_case: Any, tmp_path: Any
) -> None:
    sent, fresh = make_case(), make_case()
    assert Align().initiate_align_order(None, sent).ok
    align_sandbox.reset()
    report = tmp_path / "report.csv"
    with paused:
        code, out = batch(
            "align_send_orders",
            "--case",
            str(sent.uuid),
            "--case",
            str(fresh.uuid),
            "--report",
            str(report),
        )
        revise_code, revise_out = batch(
            "align_clincheck_revise", "--case", str(sent.uuid), "--comment", "Close it"
        )
    assert code == 3, out
    assert "skipped: already done" in out  # nothing would be sent for it anyway
    assert "paused [503]" in out and "1 paused (outbound traffic is paused)" in out
    assert SWITCH in out
    assert ",paused,503," in report.read_text(encoding="utf-8-sig")
    assert revise_code == 3 and "paused" in revise_out
    assert not outbound_calls(align_sandbox)
    assert not RemoteOperation.objects.filter(case=fresh).exists()
    revise = RemoteOperation.objects.get(case=sent, kind="clincheck_revise")
    assert (revise.state, revise.attempts) == (RemoteOperation.PENDING, 0)

    code, out = batch("align_send_orders", "--case", str(fresh.uuid))
    assert code == 0, out
    assert align_sandbox.count("create_patient") == 1


# -- worker and tasks ---------------------------------------------------------------------------
def test_the_worker_leaves_due_work_due_and_runs_it_afterwards(
    align_sandbox: Any, due_retry: RemoteOperation
) -> None:
    before = (due_retry.state, due_retry.attempts, due_retry.next_attempt_at)
    with paused:
        assert run_due_operations() == 0
        result = run_worker_pass()
    assert result.operations == 0 and result.errors == 0
    due_retry.refresh_from_db()
    assert (due_retry.state, due_retry.attempts, due_retry.next_attempt_at) == before
    assert not outbound_calls(align_sandbox)

    assert run_due_operations() == 1
    due_retry.refresh_from_db()
    assert due_retry.state == RemoteOperation.SUCCEEDED and due_retry.attempts == 2
    assert AlignCase.objects.get(case=due_retry.case).order_sent


def test_a_retry_task_sends_nothing_and_keeps_the_work(
    align_sandbox: Any, due_retry: RemoteOperation
) -> None:
    before = (due_retry.state, due_retry.attempts, due_retry.next_attempt_at)
    with paused:
        assert tasks.retry_operation.call(due_retry.pk) is False
    due_retry.refresh_from_db()
    assert (due_retry.state, due_retry.attempts, due_retry.next_attempt_at) == before
    assert not outbound_calls(align_sandbox)
    assert tasks.retry_operation.call(due_retry.pk) is True


def test_manual_retries_refuse_while_paused(align_sandbox: Any, due_retry: RemoteOperation) -> None:
    with paused:
        with pytest.raises(OutboundPaused):
            retry_operations([due_retry])
        with pytest.raises(CommandError, match=SWITCH):
            call_command("align_worker", "--retry", str(due_retry.pk), stdout=io.StringIO())
    due_retry.refresh_from_db()
    assert due_retry.attempts == 1
    assert not outbound_calls(align_sandbox)


# -- receivers ----------------------------------------------------------------------------------
def test_aligners_bought_while_paused_are_accepted_once_the_switch_is_off(
    align_sandbox: Any, make_case: Any, provider: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    case = make_case(provider=provider)
    assert Align().initiate_align_order(None, case).ok
    AlignCase.objects.filter(case=case).update(
        treatment_plan_id="PL-1", treatment_plan_version=1, awaiting_provider_review=True
    )
    Align().create_acceptance_screenshot(case, jpeg_data_url(), user=provider.user)
    before = len(outbound_calls(align_sandbox))
    with paused:
        aligners_purchased.send(sender=None, case=case, user=None)  # never raises
        assert run_due_operations() == 0
    assert len(outbound_calls(align_sandbox)) == before
    accept = RemoteOperation.objects.get(case=case, kind="clincheck_accept")
    assert (accept.state, accept.attempts) == (RemoteOperation.RETRY_SCHEDULED, 0)
    assert accept.next_attempt_at <= timezone.now()
    assert CaseEvent.objects.filter(
        case=case, action="clincheck_accept", message__contains="sent once the switch is off"
    ).exists()

    assert run_due_operations() == 1
    assert align_sandbox.count("clincheck_accept") == 1
    accept.refresh_from_db()
    assert accept.state == RemoteOperation.SUCCEEDED


# -- align_doctor -------------------------------------------------------------------------------
def test_align_doctor_reports_the_switch_and_calls_nothing(
    align_sandbox: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {
        key: value for key, value in settings.ALIGN_INTEGRATION.items() if key != "ITERO"
    }
    out = io.StringIO()
    with paused:
        call_command("align_doctor", stdout=out, no_color=True)  # a deliberate pause passes
    text = out.getvalue()
    assert f"WARN paused: waffle switch '{SWITCH}' is on: nothing is sent" in text
    assert "WARN token: not checked: outbound traffic is paused" in text
    assert "WARN service: not checked: outbound traffic is paused" in text
    assert not outbound_calls(align_sandbox)
    out = io.StringIO()
    call_command("align_doctor", stdout=out, no_color=True)
    assert "OK paused: outbound calls are not paused" in out.getvalue()
    assert align_sandbox.count("token") == 1


def test_reconcile_asks_align_nothing_while_paused(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    assert Align().initiate_align_order(None, case).ok
    before = len(outbound_calls(align_sandbox))
    out, err = io.StringIO(), io.StringIO()
    with paused, pytest.raises(CommandError) as stopped:
        call_command("align_reconcile", "--case", str(case.uuid), stdout=out, stderr=err)
    assert stopped.value.returncode == 3  # could not be checked
    assert "1 paused (outbound traffic is paused)" in out.getvalue()
    assert len(outbound_calls(align_sandbox)) == before


def test_the_http_clients_themselves_send_nothing_while_paused(align_sandbox: Any) -> None:
    """The last line: a client used directly (host code, a forgotten path) is stopped too."""
    before = len(align_sandbox.requests)
    with override_switch(SWITCH, active=True):
        with pytest.raises(OutboundPaused):
            AlignServiceClient().find_patients("any-case")
        with pytest.raises(OutboundPaused):
            IteroClient().refresh("any-refresh-token")
    assert len(align_sandbox.requests) == before
    assert AlignServiceClient().find_patients("any-case") == []  # and again once it is off
