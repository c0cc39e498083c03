"""No patient data in logs, stored rows, pages or reports, whatever happens.

The flows run with a canary patient (tests/canary.py) while the vendor echoes it back in
its error messages in other cases, spellings and date formats.  Afterwards the canary may
appear in no log record at any level, in no text or JSON field of any of the app's models,
on no admin page of the app (the list and the change page of every registered model, seen
by a superuser), in no page or JSON answer the flows gave, and in no batch report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.db import models
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.models import RemoteOperation
from tests import canary
from tests.images import jpeg_data_url
from tests.webhook_cases import post_signed, signed_headers

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.FileField)
#: The one stored value allowed to hold what a person typed: the provider's revision
#: comment, kept on the operation so a retry sends the same words (never shown or logged).
PROVIDER_TEXT = (RemoteOperation, "payload", "comments")
PROVIDER_COMMENT = "Testy needs more room at 21"
DAY = "2026-11-20"


def app_models() -> list[type[models.Model]]:
    return list(apps.get_app_config("align_integration").get_models())


def stored_texts() -> Iterator[tuple[str, str]]:
    """(where, text) for every text, file name or JSON value of every row of the app."""
    for model in [*app_models(), LogEntry]:
        fields = [f for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        for row in model._default_manager.all():
            for field in fields:
                value = getattr(row, field.attname)
                if (model, field.name) == PROVIDER_TEXT[:2] and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if k != PROVIDER_TEXT[2]}
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                yield f"{model.__name__}.{field.name} #{row.pk}", str(text)


def admin_pages(client: Client) -> Iterator[tuple[str, str]]:
    """(url, body) of the list and of each row's change page, for every model of the app."""
    for model in admin.site._registry:
        if model._meta.app_label != "align_integration":
            continue
        info = (model._meta.app_label, model._meta.model_name)
        listing = reverse("admin:{}_{}_changelist".format(*info))
        for url in (listing, f"{listing}?all=", f"{listing}?q=a"):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            yield url, response.content.decode()
        for pk in model._default_manager.values_list("pk", flat=True)[:25]:
            url = reverse("admin:{}_{}_change".format(*info), args=[pk])
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            yield url, response.content.decode()


def callback(case: Any, event_type: str, **data: Any) -> None:
    body = json.dumps({"type": event_type, "data": {"caseId": str(case.pk), **data}})
    post_signed(Client(), "/align/callbacks/", body, signed_headers(body))


def plan(case: Any, plan_id: str, version: int) -> None:
    callback(
        case,
        "treatment_plan.submitted",
        planId=plan_id,
        version=version,
        createdAt=f"{DAY}T1{version}:30:00Z",
    )


@pytest.mark.django_db
def test_no_patient_data_anywhere_after_every_flow(
    align_sandbox: Any,
    make_case: Any,
    provider: Any,
    flags: Any,
    caplog: pytest.LogCaptureFixture,
    staff_user: Any,
    admin_user: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 1},
    }
    caplog.set_level(logging.DEBUG)
    flags("initiate-align-order")
    flags("set-align-order-status")
    align_sandbox.auto_callbacks = False
    case = make_case(provider=provider, gender="U", **canary.PATIENT)
    ref = str(case.uuid)
    answers: list[tuple[str, str]] = []

    # Sending: the service echoes the patient back in every error it gives.
    align_sandbox.inject_fault("create_patient", status=422, body=canary.ECHO, times=1)
    align_sandbox.inject_fault("create_order", status=503, body=canary.ECHO, times=2)
    align_sandbox.inject_fault("upload_assets", drop="after", times=1)
    staff = Client()
    staff.force_login(staff_user)
    send = reverse("align_integration:staff-align-initiate-order", kwargs={"case_ref": ref})
    for attempt in range(4):
        headers = {"HTTP_ACCEPT": "application/json"} if attempt % 2 else {}
        answers.append((f"send {attempt}", staff.post(send, **headers).content.decode()))
    panel = reverse("align_integration:staff-align-panel", kwargs={"case_ref": ref})
    answers.append(("panel", staff.get(panel).content.decode()))

    # Align's callbacks.
    callback(
        case,
        "sales_order.created",
        salesOrderNumber="SO-1",
        patientId="P-1",
        orderType="primary",
        createdAt=f"{DAY}T10:00:00Z",
    )
    plan(case, "PL-1", 1)
    callback(
        case, "case.status_changed", status="treatment_plan_ready", changedAt=f"{DAY}T12:00:00Z"
    )
    callback(case, "case.status_changed", status=5)

    # The provider: a bad screenshot, a refused and then a sent revision, an approve with no
    # plan awaiting, and an approve of the next plan.
    doctor = Client()
    doctor.force_login(provider.user)
    action = reverse("align_integration:provider-case-action", kwargs={"case_ref": ref})
    plan_1 = {"plan_id": "PL-1", "plan_version": "1"}
    posts = [
        {"action": "approve", "acceptance_screenshot": "data:image/png;base64,x", **plan_1},
        {"action": "revise", "comment": PROVIDER_COMMENT, **plan_1},
        {"action": "revise", "comment": "Close the gap", **plan_1},
        {"action": "approve", "acceptance_screenshot": jpeg_data_url(), **plan_1},
    ]
    for index, data in enumerate(posts):
        if index == 1:
            align_sandbox.inject_fault("clincheck_revise", status=422, body=canary.ECHO, times=1)
        answers.append((f"provider {index}", doctor.post(action, data).content.decode()))
    plan(case, "PL-2", 2)
    data = {"action": "approve", "acceptance_screenshot": jpeg_data_url(), "plan_version": "2"}
    approved = doctor.post(action, data, HTTP_ACCEPT="application/json")
    assert approved.status_code == 200, approved.content
    answers.append(("approve 2", approved.content.decode()))

    # ClinCheck accept failing for good, from the API and from a batch command.
    align_sandbox.inject_fault("clincheck_accept", status=500, body=canary.ECHO, times=None)
    result = Align().set_case_status(None, case, "approve")
    answers.append(("accept", json.dumps(list(result))))
    report = tmp_path / "report.csv"
    with pytest.raises(CommandError):
        call_command("align_clincheck_accept", "--case", ref, "--report", str(report))
    answers.append(("batch report", report.read_text(encoding="utf-8")))

    assert align_sandbox.count("create_patient") >= 2, "the flows really ran"
    assert align_sandbox.count("clincheck_revise") == 2
    assert align_sandbox.count("clincheck_accept") >= 2
    names = {record.name for record in caplog.records}
    assert {"align_integration.client", "align_integration.workflows"} <= names

    admin_client = Client()
    admin_client.force_login(admin_user)
    pages = list(admin_pages(admin_client))
    registered = {m for m in admin.site._registry if m._meta.app_label == "align_integration"}
    assert registered == set(app_models()), "every model of the app has an admin page"

    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert canary.leaks(text) == [], (record.name, text)
    for where, text in [*stored_texts(), *pages, *answers]:
        assert canary.leaks(text) == [], (where, text)
    # The vendor's text was kept for support, redacted (checked above with every field).
    assert RemoteOperation.objects.filter(case=case).exclude(vendor_detail="").exists()
    assert any("Vendor detail" in body for _, body in pages), "superusers see the detail"
    # The comment was sent as written, and is kept only where the exemption says.
    assert RemoteOperation.objects.filter(
        case=case, kind="clincheck_revise", payload__comments=PROVIDER_COMMENT
    ).exists()
    assert align_sandbox.calls("clincheck_revise")[0].form["comments"] == PROVIDER_COMMENT
