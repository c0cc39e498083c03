"""Staff endpoints: the panel (checklist, button, timeline) and the send action."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration.models import CaseEvent

pytestmark = pytest.mark.django_db


def panel_url(case: Any) -> str:
    return reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(case.uuid)})


def initiate_url(case: Any) -> str:
    return reverse(
        "align_integration:staff-align-initiate-order", kwargs={"case_ref": str(case.uuid)}
    )


@pytest.fixture
def staff_client(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_panel_shows_checklist_button_and_timeline(
    staff_client: Client, make_case: Any, flags: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    CaseEvent.objects.create(
        case=case,
        action="initiate_order",
        outcome="failed",
        message="Stopped at create patient",
        status_code=503,
    )
    page = staff_client.get(panel_url(case)).content.decode()
    assert "Prescription lab is Align" in page
    assert "Photo assessment approved" in page
    assert "At least 2 STL files (2 on file)" in page
    assert 'id="align-send"' in page
    assert "Stopped at create patient" in page


def test_panel_hides_the_button_when_a_check_fails(
    staff_client: Client, make_case: Any, flags: Any
) -> None:
    flags("initiate-align-order")
    case = make_case(stl_files=1)
    page = staff_client.get(panel_url(case)).content.decode()
    assert "(1 on file)" in page
    assert 'id="align-send"' not in page


def test_panel_is_staff_only(client: Client, make_case: Any, django_user_model: Any) -> None:
    case = make_case()
    assert client.get(panel_url(case)).status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("patient-user"))
    assert client.get(panel_url(case)).status_code == 302


def test_unknown_case_is_404(staff_client: Client, flags: Any) -> None:
    flags("initiate-align-order")
    url = reverse("align_integration:staff-align-panel", kwargs={"case_ref": "not-a-uuid"})
    assert staff_client.get(url).status_code == 404
    url = reverse(
        "align_integration:staff-align-initiate-order",
        kwargs={"case_ref": "00000000-0000-0000-0000-000000000000"},
    )
    assert staff_client.post(url).status_code == 404


def test_initiate_sends_and_answers_json(
    staff_client: Client, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    response = staff_client.post(initiate_url(case), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "errors": []}
    assert len(align_sandbox.patients) == 1


def test_initiate_html_answer_carries_the_service_status(
    staff_client: Client, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    align_sandbox.inject_fault("create_patient", status=409, body={"errors": ["duplicate mrn"]})
    response = staff_client.post(initiate_url(case))
    assert response.status_code == 409
    assert "There was a problem sending this case to Align" in response.content.decode()
    json_response = staff_client.post(initiate_url(case), HTTP_ACCEPT="application/json")
    assert json_response.status_code == 200  # the fault was used up: resumed and sent


def test_ineligible_is_400_with_reasons(
    staff_client: Client, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case(approved=False)
    response = staff_client.post(initiate_url(case), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == ["Not met: Photo assessment approved"]
    assert align_sandbox.count("create_patient") == 0


def test_flag_off_is_404(
    staff_client: Client, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order", on=False)
    case = make_case()
    assert staff_client.post(initiate_url(case)).status_code == 404
    assert align_sandbox.count("create_patient") == 0


def test_non_staff_is_refused(
    client: Client, make_case: Any, flags: Any, django_user_model: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    assert client.post(initiate_url(case)).status_code == 403
    client.force_login(django_user_model.objects.create_user("not-staff"))
    assert client.post(initiate_url(case), HTTP_ACCEPT="application/json").status_code == 403
    assert align_sandbox.count("create_patient") == 0


def test_get_is_not_allowed(staff_client: Client, make_case: Any, flags: Any) -> None:
    flags("initiate-align-order")
    assert staff_client.get(initiate_url(make_case())).status_code == 405


def test_csrf_is_enforced(staff_user: Any, make_case: Any, flags: Any, align_sandbox: Any) -> None:
    flags("initiate-align-order")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(initiate_url(make_case())).status_code == 403
    assert align_sandbox.count("create_patient") == 0
