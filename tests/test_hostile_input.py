"""Hostile input on every endpoint: a 4xx (or a redirect to log in), never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

pytestmark = pytest.mark.django_db

WEIRD_REFS = [
    "0",
    "-1",
    "99999999999999999999999",
    "../../etc/passwd",
    "%00",
    "\x00",
    "🦷",
    "00000000-0000-0000-0000-000000000000",
    "a" * 300,
    "'; drop table x; --",
]


@pytest.fixture
def staff(staff_user: Any, flags: Any) -> Client:
    flags("initiate-align-order")
    flags("set-align-order-status")
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("ref", WEIRD_REFS)
def test_weird_case_references(staff: Client, provider: Any, ref: str) -> None:
    doctor = Client(raise_request_exception=False)
    doctor.force_login(provider.user)
    for name, client, method in [
        ("staff-align-panel", staff, "get"),
        ("staff-align-initiate-order", staff, "post"),
        ("provider-case-review", doctor, "get"),
        ("provider-case-action", doctor, "post"),
    ]:
        try:
            url = reverse(f"align_integration:{name}", kwargs={"case_ref": ref})
        except NoReverseMatch:  # a reference no URL can carry (a "/" in it)
            continue
        response = getattr(client, method)(url)
        assert response.status_code == 404, (name, ref, response.status_code)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"action": ["approve", "revise"]},
        {"action": "approve", "acceptance_screenshot": "data:image/jpeg;base64," + "/" * 10},
        {"action": "approve", "acceptance_screenshot": "\x00" * 50},
        {"action": "revise", "comment": "x" * 100_000},
        {"action": "APPROVE"},
    ],
)
def test_weird_provider_forms(make_case: Any, provider: Any, flags: Any, data: Any) -> None:
    flags("set-align-order-status")
    case = make_case(provider=provider)
    client = Client(raise_request_exception=False)
    client.force_login(provider.user)
    url = reverse("align_integration:provider-case-action", kwargs={"case_ref": str(case.uuid)})
    response = client.post(url, data)
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'{"rxId": null}',
        b'{"rxId": "\\u0000", "accountNumber": "x"}',
        b'{"rxId": "' + b"a" * 5000 + b'", "accountNumber": "x"}',
        b"\xff\xfe",
        b"{" * 10000,
    ],
)
def test_weird_itero_notifications(settings: Any, body: bytes) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {"NOTIFICATION_TOKEN": "tok"},
    }
    client = Client(raise_request_exception=False)
    url = reverse("align_integration:itero-notifications", kwargs={"token": "tok"})
    response = client.generic("POST", url, body, content_type="application/json")
    assert 400 <= response.status_code < 500, (body[:30], response.status_code)


def test_weird_itero_pages(staff: Client) -> None:
    for path, method, data in [
        (reverse("align_integration:itero-oauth-callback") + "?code=x&state=y", "get", None),
        (reverse("align_integration:itero-oauth-callback") + "?code=%00", "get", None),
        (reverse("align_integration:itero-pair"), "post", {"account_number": "\x00" * 3}),
        (reverse("align_integration:itero-pair"), "post", {"account_number": "x" * 500}),
        (reverse("align_integration:itero-pair"), "post", {}),
    ]:
        response = getattr(staff, method)(path, data or {})
        assert 400 <= response.status_code < 500 or response.status_code in (302, 503), (
            path,
            response.status_code,
        )
