"""Vendor free text is never kept or shown (security review, findings 1 and 10).

Align's error messages may echo the patient in any case and date format; what the app
keeps and shows is its own summary (status, stable code, count).  The vendor's text goes
only to ``RemoteOperation.vendor_detail``, redacted, which only superusers see; of a
successful answer only the ids are kept.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.adapters import PatientData
from align_integration.client.errors import (
    AlignAuthenticationError,
    AlignConnectionError,
    AlignNotFound,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceUnavailable,
    AlignTimeout,
)
from align_integration.models import CaseEvent, RemoteOperation
from align_integration.workflows.errors import error_code, error_summary, safe_request_id
from align_integration.workflows.operations import kept_result
from align_integration.workflows.redaction import redact
from align_integration.workflows.timeline import record
from tests import canary
from tests.ops.conftest import add_screenshot, read_report

pytestmark = pytest.mark.django_db

CANARY_PATIENT = PatientData(
    first_name=canary.FIRST_NAME,
    last_name=canary.LAST_NAME,
    date_of_birth=canary.BIRTH,
    gender="F",
    mrn=canary.MRN,
    email=canary.EMAIL,
    phone=canary.PHONE,
)


def case_url(name: str, case: Any) -> str:
    return reverse(f"align_integration:{name}", kwargs={"case_ref": str(case.uuid)})


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- the summary ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "code", "summary"),
    [
        (
            AlignRequestRejected("x", status_code=422, errors=canary.ECHO_MESSAGES),
            "validation_failed",
            "Align answered 422 (validation_failed, 4 errors: dateOfBirth, mrn)",
        ),
        (
            AlignRequestRejected("x", status_code=400, errors=["Testy"]),
            "rejected",
            "Align answered 400 (rejected, 1 error)",
        ),
        (
            AlignRequestRejected("x", status_code=409, errors=[]),
            "conflict",
            "Align answered 409 (conflict)",
        ),
        (AlignNotFound("x", errors=["no McTestface"]), "not_found", None),
        (AlignAuthenticationError("x"), "unauthorized", "Align answered 401 (unauthorized)"),
        (AlignRateLimited("x"), "rate_limited", "Align answered 429 (rate_limited)"),
        (
            AlignServiceUnavailable("x", status_code=503, errors=canary.ECHO_MESSAGES[:1]),
            "unavailable",
            "Align answered 503 (unavailable, 1 error)",
        ),
        (
            AlignRequestRejected("non-JSON", status_code=502),
            "protocol",
            "Align's answer could not be used (protocol)",
        ),
        (AlignTimeout("x"), "timeout", "No answer from Align in time (timeout)"),
        (AlignConnectionError("x"), "connection", "Could not reach Align (connection)"),
    ],
)
def test_the_summary_holds_status_code_and_count_never_vendor_text(
    error: Any, code: str, summary: str | None
) -> None:
    assert error_code(error) == code
    text = error_summary(error)
    if summary is not None:
        assert text == summary
    assert canary.leaks(text) == []
    assert "Patient" not in text and "born" not in text


@pytest.mark.parametrize(
    "text",
    [
        *canary.ECHO_MESSAGES,
        "TESTY MCTESTFACE",
        "tEsTy_mCtEsTfAcE",
        "Téstý McTéstfacé",
        "MRN DEMO MRN 001",
        "chart demo_mrn_001",
        "born 2 May 1991",
        "born May 2nd, 1991",
        "DOB 1991/05/02",
        "dob=02-05-1991",
        "5.2.1991",
        "02051991",
        "+1 (555) 0100",
    ],
)
def test_vendor_detail_redaction_finds_the_patient_in_any_form(text: str) -> None:
    assert canary.leaks(text), "the canary check itself must see this text"
    assert canary.leaks(redact(text, CANARY_PATIENT)) == []


def test_redaction_also_removes_dates_and_contacts_of_anyone() -> None:
    cleaned = redact("Other patient born 12/31/1980 (31 Dec 1980), j.doe@example.org, 0301234567")
    assert "1980" not in cleaned and "example.org" not in cleaned and "0301234567" not in cleaned
    assert redact("caseId: does not match the case in the URL") == (
        "caseId: does not match the case in the URL"
    )


def test_request_ids_are_kept_only_when_id_shaped(make_case: Any) -> None:
    assert safe_request_id("req-1a2b:3") == "req-1a2b:3"
    assert safe_request_id("Testy McTestface 1991-05-02") == ""
    event = record(make_case(), "x", CaseEvent.INFO, "m", request_id="Patient Testy McTestface")
    assert event.request_id == ""


def test_only_ids_of_an_answer_are_kept() -> None:
    answer = {
        "patientId": "P-123",
        "orderId": 42,
        "status": "accepted",
        "uploaded": 2,
        "patient": {"firstName": "Testy"},
        "note": "born 05/02/1991",
    }
    assert kept_result(answer) == {
        "patientId": "P-123",
        "orderId": 42,
        "status": "accepted",
        "uploaded": 2,
    }
    assert kept_result({"status": "Testy McTestface", "patientId": True}) == {}
    assert kept_result(["not", "a", "dict"]) == {}


# -- through the flows -------------------------------------------------------------------------
@pytest.fixture
def echoing_case(
    make_case: Any, align_sandbox: Any, flags: Any, settings: Any, staff_user: Any
) -> Any:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 0},
    }
    align_sandbox.auto_callbacks = False
    flags("initiate-align-order")
    return make_case(**canary.PATIENT)


def test_a_vendor_error_echoing_the_patient_lands_nowhere(
    echoing_case: Any,
    align_sandbox: Any,
    staff_user: Any,
    admin_user: Any,
    django_user_model: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    case = echoing_case
    staff = logged_in(staff_user)
    send = case_url("staff-align-initiate-order", case)
    seen: list[str] = []

    # A final refusal, answered in JSON.
    align_sandbox.inject_fault("create_patient", status=422, body=canary.ECHO)
    answer = staff.post(send, HTTP_ACCEPT="application/json")
    assert answer.status_code == 422
    assert answer.json() == {
        "ok": False,
        "errors": [
            "Create patient: Align answered 422 (validation_failed, 4 errors: dateOfBirth, mrn)"
        ],
    }
    seen.append(answer.content.decode())

    # A transient failure (background retry), answered with the staff panel.
    align_sandbox.inject_fault("create_order", status=503, body=canary.ECHO)
    page = staff.post(send)
    assert page.status_code == 503
    seen.append(page.content.decode())
    assert "Align answered 503 (unavailable, 4 errors" in seen[-1]
    seen.append(staff.get(case_url("staff-align-panel", case)).content.decode())

    operations = {op.kind: op for op in RemoteOperation.objects.filter(case=case)}
    patient_op = operations[RemoteOperation.CREATE_PATIENT]
    order_op = operations[RemoteOperation.CREATE_ORDER]
    assert order_op.state == RemoteOperation.RETRY_SCHEDULED
    assert (order_op.last_status_code, order_op.last_error_code) == (503, "unavailable")
    assert order_op.last_errors == ["Align answered 503 (unavailable, 4 errors: dateOfBirth, mrn)"]
    # The vendor's text is kept for support, redacted.
    assert "[redacted]" in order_op.vendor_detail and "dateOfBirth" in order_op.vendor_detail
    assert patient_op.state == RemoteOperation.SUCCEEDED  # sent again on the second click
    assert set(patient_op.result) == {"patientId"}

    for event in CaseEvent.objects.filter(case=case):
        seen.append(event.message)
    for operation in RemoteOperation.objects.filter(case=case):
        seen += [json.dumps(operation.last_errors), json.dumps(operation.result)]
        seen.append(operation.vendor_detail)

    # The admin: superusers see the redacted vendor detail, other staff not at all.
    viewer = django_user_model.objects.create_user(username="ops", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_remoteoperation", "view_caseevent"])
    )
    change = reverse("admin:align_integration_remoteoperation_change", args=[order_op.pk])
    as_admin = logged_in(admin_user).get(change).content.decode()
    as_viewer = logged_in(viewer).get(change).content.decode()
    assert "[redacted]" in as_admin and "Vendor detail" in as_admin
    assert "[redacted]" not in as_viewer and "Vendor detail" not in as_viewer
    seen += [as_admin, as_viewer]
    for name in ("remoteoperation", "caseevent"):
        listing = reverse(f"admin:align_integration_{name}_changelist")
        seen.append(logged_in(admin_user).get(listing).content.decode())

    seen += [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for text in seen:
        assert canary.leaks(text) == [], text


def test_a_batch_report_keeps_the_summary_not_the_vendor_text(
    make_case: Any, align_sandbox: Any, tmp_path: Path
) -> None:
    align_sandbox.auto_callbacks = False
    case = make_case(**canary.PATIENT)
    assert Align().initiate_align_order(None, case).ok
    add_screenshot(case)
    align_sandbox.inject_fault("clincheck_accept", status=422, body=canary.ECHO)
    report = tmp_path / "report.csv"
    with pytest.raises(CommandError):
        call_command("align_clincheck_accept", "--case", str(case.uuid), "--report", str(report))
    [row] = read_report(report)
    assert row["outcome"] == "failed" and row["status"] == "422"
    assert "validation_failed, 4 errors" in row["message"]
    assert canary.leaks(report.read_text(encoding="utf-8")) == []


def test_only_the_ids_of_a_successful_answer_are_kept(make_case: Any, align_sandbox: Any) -> None:
    align_sandbox.auto_callbacks = False
    case = make_case(**canary.PATIENT)
    chatty = {"uploaded": 2, "patient": {"firstName": "Testy", "mrn": "DEMO-MRN-001"}}
    align_sandbox.inject_fault("upload_assets", status=200, body=chatty)
    assert Align().initiate_align_order(None, case).ok
    results = {op.kind: op.result for op in RemoteOperation.objects.filter(case=case)}
    assert results == {
        RemoteOperation.CREATE_PATIENT: {"patientId": results["create_patient"]["patientId"]},
        RemoteOperation.CREATE_ORDER: {"orderId": results["create_order"]["orderId"]},
        RemoteOperation.UPLOAD_ASSETS: {"uploaded": 2},
    }


def test_the_migration_scrubs_what_version_0_1_stored(make_case: Any) -> None:
    case = make_case(**canary.PATIENT)
    operation = RemoteOperation.objects.create(
        case=case,
        kind=RemoteOperation.CREATE_PATIENT,
        dedupe_key="old",
        last_status_code=422,
        last_errors=["Align service answered 422 to create_patient", *canary.ECHO_MESSAGES],
        result={"patientId": "P-9", "echo": canary.ECHO_MESSAGES[0]},
    )
    event = record(
        case,
        RemoteOperation.CREATE_PATIENT,
        CaseEvent.FAILED,
        f"Create patient failed: {'; '.join(canary.ECHO_MESSAGES)}",
        status_code=422,
        operation=operation,
    )
    migration = importlib.import_module("align_integration.migrations.0010_vendor_text")
    migration.scrub(apps, None)
    operation.refresh_from_db()
    event.refresh_from_db()
    assert operation.result == {"patientId": "P-9"}
    assert operation.last_errors == ["Align answered 422 (the vendor's message was removed)"]
    assert event.message == "Create patient failed (HTTP 422; the vendor's message was removed)."
