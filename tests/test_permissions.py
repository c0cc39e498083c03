"""Least privilege (issue 13, finding 6; CONTRACT §10): sending a case to Align and managing
the iTero pairing need ``is_staff`` and their own permission; staff without it get 403 and
nothing leaves for Align or iTero."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.users import grant

pytestmark = pytest.mark.django_db

ITERO_ACTIONS = [
    ("itero-connect", "get", None),
    ("itero-oauth-callback", "get", None),
    ("itero-pair", "post", {"account_number": "LAB-1001"}),
    ("itero-unpair", "get", None),
    ("itero-unpair", "post", None),
]


def action_url(name: str) -> str:
    """``itero-unpair`` names the lab account to un-pair."""
    kwargs = {"account_number": "LAB-1001"} if name == "itero-unpair" else None
    return reverse(f"align_integration:{name}", kwargs=kwargs)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def initiate_url(case: Any) -> str:
    return reverse(
        "align_integration:staff-align-initiate-order", kwargs={"case_ref": str(case.uuid)}
    )


def test_the_permissions_exist_under_the_contract_names() -> None:
    for codename in ("send_to_align", "manage_itero_connection"):
        permission = Permission.objects.get(codename=codename)
        assert permission.content_type.app_label == "align_integration"


def test_staff_without_send_to_align_gets_403_and_nothing_is_sent(
    plain_staff_user: Any, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    case = make_case()
    client = logged_in(plain_staff_user)
    response = client.post(initiate_url(case), HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "align_integration.send_to_align" in response.json()["errors"][0]
    assert client.post(initiate_url(case)).status_code == 403
    assert align_sandbox.count("create_patient") == 0
    # The panel still shows the checklist, without the button.
    panel = client.get(
        reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(case.uuid)})
    )
    assert panel.status_code == 200
    page = panel.content.decode()
    assert 'id="align-send"' not in page and 'id="align-send-not-permitted"' in page


def test_the_permission_alone_is_not_enough_without_is_staff(
    django_user_model: Any, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    user = grant(django_user_model.objects.create_user("not-staff"), "send_to_align")
    response = logged_in(user).post(initiate_url(make_case()), HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert align_sandbox.count("create_patient") == 0


def test_staff_with_send_to_align_and_superusers_may_send(
    staff_user: Any, admin_user: Any, make_case: Any, flags: Any, align_sandbox: Any
) -> None:
    flags("initiate-align-order")
    for user in (staff_user, admin_user):
        response = logged_in(user).post(initiate_url(make_case()), HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
    assert align_sandbox.count("create_patient") == 2


@pytest.mark.parametrize(("name", "method", "data"), ITERO_ACTIONS)
def test_staff_without_manage_itero_connection_gets_403(
    plain_staff_user: Any, itero_settings: Any, name: str, method: str, data: Any
) -> None:
    client = logged_in(plain_staff_user)
    response = getattr(client, method)(action_url(name), data or {})
    assert response.status_code == 403
    assert "manage_itero_connection" in response.content.decode()
    assert "align_integration.itero.oauth_state" not in client.session


@pytest.mark.parametrize(("name", "method", "data"), ITERO_ACTIONS)
def test_managers_and_superusers_get_past_the_permission(
    staff_user: Any, admin_user: Any, itero_settings: Any, name: str, method: str, data: Any
) -> None:
    for user in (staff_user, admin_user):
        client = logged_in(user)
        response = getattr(client, method)(action_url(name), data or {})
        assert response.status_code != 403, (name, method, response.status_code)


def test_the_status_page_needs_staff_only(plain_staff_user: Any, itero_settings: Any) -> None:
    response = logged_in(plain_staff_user).get(reverse("align_integration:itero-status"))
    assert response.status_code == 200


@pytest.fixture
def itero_settings(settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {
            "OAUTH_BASE_URL": "https://auth.itero.test",
            "BASE_URL": "https://api.itero.test",
            "LOGIN_URL": "https://login.itero.test/authorize",
            "CLIENT_ID": "unit-client",
            "CLIENT_SECRET": "unit-secret",
            "ALLOWED_HOSTS": [".itero.test"],
            "NOTIFICATION_TOKEN": "n" * 40,
        },
    }
