"""No patient data in logs, the timeline or stored errors, whatever happens.

The flows run with a canary patient (unusual name, date of birth, MRN, email, phone);
afterwards none of those values may appear in any log record at any level, in any
``CaseEvent`` message, in any operation's stored errors or any stored callback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.models import CallbackEvent, CaseEvent, RemoteOperation
from tests.images import jpeg_data_url
from tests.webhook_cases import post_signed, signed_headers

CANARY = {
    "first_name": "Zebulon-Quixote",
    "last_name": "Vandersnoot",
    "date_of_birth": dt.date(1911, 11, 11),
    "mrn": "MRN-CANARY-7731",
}
CANARY_STRINGS = [
    "Zebulon-Quixote",
    "Vandersnoot",
    "1911-11-11",
    "MRN-CANARY-7731",
    "patient@example.test",
    "555-0100",
]


def leaked(text: str) -> list[str]:
    return [value for value in CANARY_STRINGS if value in text]


@pytest.mark.django_db
def test_no_patient_data_anywhere_after_every_flow(
    align_sandbox: Any,
    make_case: Any,
    provider: Any,
    flags: Any,
    caplog: pytest.LogCaptureFixture,
    staff_user: Any,
    settings: Any,
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 1},
    }
    caplog.set_level(logging.DEBUG)
    flags("initiate-align-order")
    flags("set-align-order-status")
    align_sandbox.auto_callbacks = False
    case = make_case(provider=provider, gender="U", **CANARY)

    # The service echoes patient data back in its error messages.
    echo = {"errors": ["firstName Zebulon-Quixote lastName Vandersnoot mrn MRN-CANARY-7731"]}
    align_sandbox.inject_fault("create_patient", status=422, body=echo, times=1)
    align_sandbox.inject_fault("create_order", status=503, times=2)
    align_sandbox.inject_fault("upload_assets", drop="after", times=1)
    staff = Client()
    staff.force_login(staff_user)
    url = reverse(
        "align_integration:staff-align-initiate-order", kwargs={"case_ref": str(case.uuid)}
    )
    for _ in range(4):
        staff.post(url)
    staff.get(reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(case.uuid)}))

    for event_type, data in [
        (
            "sales_order.created",
            {
                "salesOrderNumber": "SO-1",
                "patientId": "P-1",
                "orderType": "primary",
                "createdAt": "2026-11-20T10:00:00Z",
            },
        ),
        (
            "treatment_plan.submitted",
            {"planId": "PL-1", "version": 1, "createdAt": "2026-11-20T11:00:00Z"},
        ),
        (
            "case.status_changed",
            {"status": "treatment_plan_ready", "changedAt": "2026-11-20T12:00:00Z"},
        ),
        ("case.status_changed", {"status": 5}),
    ]:
        body = json.dumps({"type": event_type, "data": {"caseId": str(case.pk), **data}})
        post_signed(Client(), "/align/callbacks/", body, signed_headers(body))

    doctor = Client()
    doctor.force_login(provider.user)
    action = reverse("align_integration:provider-case-action", kwargs={"case_ref": str(case.uuid)})
    doctor.post(action, {"action": "approve", "acceptance_screenshot": "data:image/png;base64,x"})
    doctor.post(action, {"action": "approve", "acceptance_screenshot": jpeg_data_url()})
    align_sandbox.inject_fault("clincheck_revise", status=422, body=echo, times=1)
    doctor.post(action, {"action": "revise", "comment": "Zebulon-Quixote needs more room"})
    doctor.post(action, {"action": "revise", "comment": "Close the gap"})
    align_sandbox.inject_fault("clincheck_accept", status=500, body=echo, times=None)
    Align().set_case_status(None, case, "approve")

    assert align_sandbox.count("create_patient") >= 2, "the flows really ran"
    assert align_sandbox.count("clincheck_revise") >= 2
    names = {record.name for record in caplog.records}
    assert {"align_integration.client", "align_integration.workflows"} <= names
    for record in caplog.records:
        message = record.getMessage()
        assert not leaked(message), (record.name, message)
        if record.exc_text:
            assert not leaked(record.exc_text)
    for event in CaseEvent.objects.all():
        assert not leaked(event.message), event.message
    for operation in RemoteOperation.objects.all():
        assert not leaked(json.dumps(operation.last_errors))
    for stored in CallbackEvent.objects.all():
        assert not leaked(stored.error + json.dumps(stored.headers))
