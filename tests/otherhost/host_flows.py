"""The app in a host with other names, run by tests/test_other_host.py with
``--ds tests.otherhost.settings`` (its case model is ``otherhost.Treatment``, UUID pk).

Only the public contract is used: settings, the adapter, URL names, ``Align``, the
``align_sandbox`` fixture, the signals and the management commands.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from waffle.models import Flag

from align_integration.cases import align_sales_order_number, can_send_to_align
from align_integration.models import AlignOrder, CaseAsset, CaseEvent
from tests.images import jpeg_data_url
from tests.otherhost.models import Customer, Dentist, Treatment
from tests.users import grant
from tests.webhook_cases import post_signed, signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def treatment(django_user_model: Any) -> Treatment:
    for name in ("initiate-align-order", "set-align-order-status"):
        Flag.objects.update_or_create(name=name, defaults={"everyone": True})
    dentist = Dentist.objects.create(
        account=django_user_model.objects.create_user("dentist", password="pw")
    )
    customer = Customer.objects.create(
        given_name="Olga",
        family_name="Other",
        birth_date=dt.date(1985, 5, 5),
        sex=None,
        chart_number="CH-77",
    )
    case = Treatment.objects.create(
        reference="T-100", customer=customer, dentist=dentist, photos_ok=True
    )
    for index in range(2):
        asset = CaseAsset(case=case, kind=CaseAsset.STL)
        asset.file.save(f"s{index}.stl", ContentFile(b"solid x\nendsolid x\n"))
    return case


def test_the_whole_flow_in_another_host(
    treatment: Treatment, align_sandbox: Any, django_user_model: Any
) -> None:
    assert can_send_to_align(treatment).ok
    staff = Client()
    ops = django_user_model.objects.create_user("ops", is_staff=True)
    staff.force_login(grant(ops, "send_to_align"))
    panel = reverse("align_integration:staff-align-panel", kwargs={"case_ref": "T-100"})
    assert staff.get(panel).status_code == 200
    send = reverse("align_integration:staff-align-initiate-order", kwargs={"case_ref": "T-100"})
    response = staff.post(send, HTTP_ACCEPT="application/json")
    assert response.json() == {"ok": True, "errors": []}
    [patient] = align_sandbox.patients
    assert (patient["caseId"], patient["gender"], patient["mrn"]) == ("T-100", "M", "CH-77")
    assert CaseEvent.objects.filter(case=treatment, action="gender_defaulted").exists()

    for event_type, data in [
        (
            "sales_order.created",
            {
                "salesOrderNumber": "SO-9",
                "patientId": patient["patientId"],
                "orderType": "primary",
                "createdAt": "2026-11-20T10:00:00Z",
            },
        ),
        (
            "treatment_plan.submitted",
            {"planId": "PL-1", "version": 1, "createdAt": "2026-11-20T11:00:00Z"},
        ),
    ]:
        body = json.dumps({"type": event_type, "data": {"caseId": "T-100", **data}})
        answer = post_signed(
            Client(),
            reverse("align_integration:callbacks"),
            body,
            signed_headers(body, align_sandbox.callback_secret),
        )
        assert answer.status_code == 200, answer.content
    treatment.refresh_from_db()
    assert treatment.stage == "plan-review"
    assert align_sales_order_number(treatment) == "SO-9"
    assert AlignOrder.objects.get().case_id == treatment.pk

    doctor = Client()
    doctor.force_login(treatment.dentist.account)
    action = reverse("align_integration:provider-case-action", kwargs={"case_ref": "T-100"})
    stranger = Client()
    stranger.force_login(django_user_model.objects.create_user("stranger"))
    assert stranger.post(action, {"action": "revise", "comment": "x"}).status_code == 404
    assert doctor.post(action, {"action": "revise", "comment": "more room"}).status_code == 200
    assert align_sandbox.calls("clincheck_revise")[0].path == "/orders/T-100/modify"
    # The plan was sent back: no approve until Align's next version arrives.
    approve = {"action": "approve", "acceptance_screenshot": jpeg_data_url()}
    assert doctor.post(action, approve).status_code == 409
    body = json.dumps(
        {
            "type": "treatment_plan.submitted",
            "data": {
                "caseId": "T-100",
                "planId": "PL-2",
                "version": 2,
                "createdAt": "2026-11-21T11:00:00Z",
            },
        }
    )
    post_signed(
        Client(),
        reverse("align_integration:callbacks"),
        body,
        signed_headers(body, align_sandbox.callback_secret),
    )
    assert (
        doctor.post(action, {**approve, "plan_id": "PL-2", "plan_version": "2"}).status_code == 200
    )

    call_command("align_clincheck_accept", "--case", "T-100", "--concurrency", "1")
    [accept] = align_sandbox.calls("clincheck_accept")
    screenshot = CaseAsset.objects.get(case=treatment, kind=CaseAsset.CCACCEPTSCREEN)
    assert accept.form["vault_id"] == screenshot.vault_id
    assert accept.path == "/orders/T-100/accept"
