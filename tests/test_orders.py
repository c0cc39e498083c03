"""Sending a case to Align against the sandbox: the steps, the timeline, faults and resuming.

The invariant a user relies on: whatever fails and however often staff press the button
again, Align ends up with exactly one patient and one primary order for the case.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection

from align_integration import Align, signals
from align_integration.cases import can_send_to_align
from align_integration.models import AlignCase, CaseEvent, RemoteOperation

pytestmark = pytest.mark.django_db(transaction=False)


def events(case: Any) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in CaseEvent.objects.filter(case=case).order_by("pk")]


def test_eligible_case_is_sent_patient_order_upload(
    align_sandbox: Any, make_case: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = make_case(gender="F", treatment_option="upper-only")
    received: list[Any] = []

    def on_initiated(sender: Any, case: Any, align_case: Any, **kwargs: Any) -> None:
        received.append(align_case)

    signals.order_initiated.connect(on_initiated)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = Align().initiate_align_order(None, case)
    finally:
        signals.order_initiated.disconnect(on_initiated)

    status_code, errors = result
    assert (status_code, errors, result.ok) == (200, [], True)
    [patient] = align_sandbox.patients
    [order] = align_sandbox.orders
    assert patient["caseId"] == str(case.pk)
    assert patient["gender"] == "F"
    assert order["orderType"] == "IAS"
    assert order["patientId"] == patient["patientId"]
    assert order["treatmentOption"] == "upper-only"
    assert order["chiefConcern"]
    upload = align_sandbox.calls("upload_assets")[0]
    assert upload.form == {
        "pId": patient["patientId"],
        "mrn": case.patient.medical_record_number,
        "caseId": str(case.pk),
    }
    state = AlignCase.objects.get(case=case)
    assert (state.patient_id, state.order_id) == (patient["patientId"], order["orderId"])
    assert state.order_sent
    assert len(received) == 1
    steps = events(case)
    for step in ("create_patient", "create_order", "upload_assets"):
        assert (step, "started") in steps and (step, "succeeded") in steps
    assert steps[-1] == ("initiate_order", "succeeded")


def test_ineligible_case_is_refused_with_reasons_and_nothing_sent(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case(lab="XX", approved=False, stl_files=1)
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 400
    assert len(errors) == 3
    assert align_sandbox.count("create_patient") == 0
    assert events(case) == [("initiate_order", "failed")]
    eligibility = can_send_to_align(case)
    assert not eligibility.ok
    assert [passed for _, passed in eligibility.checks] == [False, False, False]


def test_unknown_gender_is_sent_as_male_and_the_timeline_says_so(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case(gender="U")
    assert Align().initiate_align_order(None, case).ok
    assert align_sandbox.patients[0]["gender"] == "M"
    defaulted = CaseEvent.objects.get(case=case, action="gender_defaulted")
    assert "unknown" in defaulted.message and "M" in defaulted.message


def test_sending_again_after_success_does_nothing(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    assert Align().initiate_align_order(None, case).ok
    assert Align().initiate_align_order(None, case).ok
    assert align_sandbox.count("create_patient") == 1
    assert align_sandbox.count("create_order") == 1
    assert align_sandbox.count("upload_assets") == 1


STEP_LABELS = {
    "create_patient": "Create patient",
    "create_order": "Create primary order (IAS)",
    "upload_assets": "Upload assets (2 STL files)",
}


@pytest.mark.parametrize("step", ["create_patient", "create_order", "upload_assets"])
def test_a_failed_step_is_resumed_without_duplicates(
    align_sandbox: Any, make_case: Any, step: str
) -> None:
    case = make_case()
    align_sandbox.inject_fault(step, status=422, times=1, body={"errors": ["rejected"]})
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 422
    # The app's summary, not the vendor's text ("rejected" is what the sandbox said).
    assert errors == [f"{STEP_LABELS[step]}: Align answered 422 (validation_failed, 1 error)"]
    assert events(case)[-1] == ("initiate_order", "failed")

    assert Align().initiate_align_order(None, case).ok
    assert len(align_sandbox.patients) == 1
    assert len(align_sandbox.orders) == 1
    assert AlignCase.objects.get(case=case).order_sent


@pytest.mark.parametrize("step", ["create_patient", "create_order", "upload_assets"])
def test_ambiguous_failure_after_the_service_acted_never_duplicates(
    align_sandbox: Any, make_case: Any, step: str, settings: Any
) -> None:
    # The service acts, then the connection drops (every in-request retry too).
    config = dict(settings.ALIGN_INTEGRATION)
    config["SERVICE"] = {**config["SERVICE"], "RETRIES": 0}
    settings.ALIGN_INTEGRATION = config
    case = make_case()
    align_sandbox.inject_fault(step, drop="after", times=1)
    first = Align().initiate_align_order(None, case)
    assert first.status_code in (502, 504)
    operation = RemoteOperation.objects.get(case=case, kind=step)
    assert operation.ambiguous
    assert operation.state == RemoteOperation.RETRY_SCHEDULED

    assert Align().initiate_align_order(None, case).ok
    assert len(align_sandbox.patients) == 1
    assert len(align_sandbox.orders) == 1
    keys = {r.idempotency_key for r in align_sandbox.calls(step)}
    assert len(keys) == 1, "every attempt of one operation reuses its idempotency key"


def test_transient_503_is_retried_inside_the_request(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    align_sandbox.inject_fault("create_order", status=503, retry_after=0, times=2)
    assert Align().initiate_align_order(None, case).ok
    assert align_sandbox.count("create_order") == 3
    assert len(align_sandbox.orders) == 1


def test_persistent_503_schedules_a_background_retry(align_sandbox: Any, make_case: Any) -> None:
    from align_integration.worker import run_due_operations

    case = make_case()
    align_sandbox.inject_fault("create_patient", status=503, times=None)
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 503 and errors
    operation = RemoteOperation.objects.get(case=case, kind="create_patient")
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    assert operation.next_attempt_at is not None
    assert ("create_patient", "retry_scheduled") in events(case)

    align_sandbox.clear_faults()
    RemoteOperation.objects.filter(pk=operation.pk).update(next_attempt_at=operation.created_at)
    assert run_due_operations() == 1
    assert AlignCase.objects.get(case=case).order_sent
    assert len(align_sandbox.patients) == 1


def test_background_retries_stop_after_the_maximum(
    align_sandbox: Any, make_case: Any, settings: Any
) -> None:
    config = dict(settings.ALIGN_INTEGRATION)
    config["OPERATION_MAX_ATTEMPTS"] = 2
    config["SERVICE"] = {**config["SERVICE"], "RETRIES": 0}
    settings.ALIGN_INTEGRATION = config
    case = make_case()
    align_sandbox.inject_fault("create_patient", status=500, times=None)
    Align().initiate_align_order(None, case)
    Align().initiate_align_order(None, case)
    operation = RemoteOperation.objects.get(case=case, kind="create_patient")
    assert operation.attempts == 2
    assert operation.state == RemoteOperation.FAILED
    assert operation.next_attempt_at is None
    assert events(case).count(("create_patient", "failed")) == 1


def test_expired_token_is_refreshed_once(align_sandbox: Any, make_case: Any) -> None:
    case = make_case()
    align = Align()
    align.token  # noqa: B018 - fetch and cache a token
    align_sandbox.expire_tokens()
    assert align.initiate_align_order(None, case).ok
    assert align_sandbox.count("token") == 2


def test_incomplete_patient_is_a_400_naming_fields_not_values(
    align_sandbox: Any, make_case: Any
) -> None:
    case = make_case(date_of_birth=None, mrn="")
    status_code, errors = Align().initiate_align_order(None, case)
    assert status_code == 400
    assert any("date of birth" in e for e in errors)
    assert any("medical record number" in e for e in errors)
    assert align_sandbox.count("create_patient") == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_for_one_case_do_not_both_act(
    align_sandbox: Any, make_case: Any, postgres: None
) -> None:
    case = make_case()
    align_sandbox.inject_fault("create_patient", delay=1.0, times=1)
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(Align().initiate_align_order(None, case))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(409) == 3, codes
    assert len(align_sandbox.patients) == 1
    assert len(align_sandbox.orders) == 1


def test_a_host_adapter_with_its_own_case_reference_and_loose_types(
    align_sandbox: Any, make_case: Any, settings: Any, client: Any
) -> None:
    from tests.webhook_cases import post_signed, signed_headers

    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.CaseNumberAdapter",
    }
    case = make_case()
    assert Align().initiate_align_order(None, case).ok
    [patient] = align_sandbox.patients
    assert patient["caseId"] == case.case_number
    assert patient["gender"] == "F"
    assert patient["dateOfBirth"] == "1990-12-10"
    # Align's callbacks carry the case number back; the app finds the case by it.
    body = json.dumps(
        {
            "type": "case.status_changed",
            "data": {
                "caseId": case.case_number,
                "status": "in_review",
                "changedAt": "2026-11-20T10:00:00Z",
            },
        }
    )
    response = post_signed(client, "/align/callbacks/", body, signed_headers(body))
    assert response.status_code == 200, response.content
    assert AlignCase.objects.get(case=case).status == "in_review"


def test_a_long_retry_after_goes_to_the_background_at_once(
    align_sandbox: Any, make_case: Any
) -> None:
    import datetime as dt

    from django.utils import timezone

    case = make_case()
    align_sandbox.inject_fault("create_patient", status=503, retry_after=120, times=None)
    started = timezone.now()
    status_code, _ = Align().initiate_align_order(None, case)
    assert status_code == 503
    assert align_sandbox.count("create_patient") == 1, "no in-request retry for a long wait"
    operation = RemoteOperation.objects.get(case=case, kind="create_patient")
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    assert operation.next_attempt_at >= started + dt.timedelta(seconds=119)


def test_a_service_whose_find_call_answers_404_still_resumes(
    align_sandbox: Any, make_case: Any, settings: Any
) -> None:
    config = dict(settings.ALIGN_INTEGRATION)
    config["SERVICE"] = {**config["SERVICE"], "RETRIES": 0}
    settings.ALIGN_INTEGRATION = config
    case = make_case()
    align_sandbox.inject_fault("create_patient", drop="after", times=1)
    align_sandbox.inject_fault("find_patients", status=404, times=None)
    assert not Align().initiate_align_order(None, case).ok
    assert Align().initiate_align_order(None, case).ok
    # The idempotency key made the second POST return the first answer.
    assert len(align_sandbox.patients) == 1
