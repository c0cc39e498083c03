"""The base of the inbound endpoints (``views.inbound``), through both of its endpoints:
callbacks and iTero notifications reach the app behind ``LoginRequiredMiddleware``, our own
failures are one log line without the path (which can hold the notification token), never
a ``django.request`` record, and bad input maps to its 4xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import Client, RequestFactory

from align_integration.models import CallbackEvent, IteroConnection, IteroNotification
from align_integration.views.inbound import BadRequest, PayloadTooLarge, read_body
from tests.itero.helpers import ACCOUNT, notification_url
from tests.webhook_cases import post_signed, signed_headers

CALLBACKS = "/align/callbacks/"
TOKEN = "unit-notify-token"


def status_changed(case: Any) -> str:
    data = {"caseId": str(case.pk), "status": "x", "changedAt": "2026-11-20T10:00:00Z"}
    return json.dumps({"type": "case.status_changed", "data": data})


def notify(client: Client, rx_id: str = "rx-1") -> Any:
    body = json.dumps({"rxId": rx_id, "accountNumber": ACCOUNT})
    return client.generic("POST", notification_url(TOKEN), body, content_type="application/json")


@pytest.fixture
def paired_connection(db: Any, settings: Any) -> IteroConnection:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {"CLIENT_ID": "unit-client", "NOTIFICATION_TOKEN": TOKEN},
    }
    connection = IteroConnection.load()
    connection.account_number = ACCOUNT
    connection.set_state(IteroConnection.PAIRED)
    connection.save()
    return connection


@pytest.fixture
def login_required(settings: Any) -> None:
    """A host that requires a login for every view not marked otherwise (Django 5.1+)."""
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]


def test_callbacks_reach_a_host_that_requires_logins(
    login_required: None, make_case: Any, client: Client
) -> None:
    body = status_changed(make_case())
    response = post_signed(client, CALLBACKS, body, signed_headers(body))
    assert response.status_code == 200, response.content
    assert CallbackEvent.objects.count() == 1


def test_notifications_reach_a_host_that_requires_logins(
    login_required: None, paired_connection: Any, client: Client
) -> None:
    assert notify(client).status_code == 202
    assert IteroNotification.objects.count() == 1


def test_our_failure_in_a_notification_is_one_line_without_the_path(
    paired_connection: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError(f"database on fire while storing {TOKEN}")

    monkeypatch.setattr("align_integration.views.itero.accept_notification", broken)
    caplog.set_level(logging.DEBUG)
    response = notify(Client(raise_request_exception=False))
    assert response.status_code == 500
    assert response.json() == {"status": "error", "reason": "internal error"}
    [line] = [r for r in caplog.records if "outcome=error" in r.getMessage()]
    assert line.getMessage().startswith("itero_notification outcome=error error=RuntimeError at=")
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert all(TOKEN not in r.getMessage() + (r.exc_text or "") for r in caplog.records)


def test_our_failure_in_a_callback_is_a_500_and_no_django_request_record(
    make_case: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("align_integration.views.callbacks.ingest", broken)
    caplog.set_level(logging.DEBUG)
    body = status_changed(make_case())
    client = Client(raise_request_exception=False)
    response = post_signed(client, CALLBACKS, body, signed_headers(body))
    assert response.status_code == 500
    assert response.json()["ok"] is False
    assert any(
        "callback outcome=error error=RuntimeError" in r.getMessage() for r in caplog.records
    )
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_rejections_are_not_logged_by_django_request_either(
    paired_connection: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client()
    assert client.get(notification_url(TOKEN)).status_code == 405
    assert client.post(notification_url("a-guess"), "{}", "application/json").status_code == 404
    assert client.get(CALLBACKS).status_code == 405
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_suspicious_operation_is_a_400(
    paired_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def suspicious(*args: Any) -> None:
        raise SuspiciousOperation("odd")

    monkeypatch.setattr("align_integration.views.itero.accept_notification", suspicious)
    response = notify(Client(raise_request_exception=False))
    assert response.status_code == 400
    assert response.json()["reason"] == "the request is malformed"


def test_405_names_the_allowed_method(db: Any) -> None:
    response = Client().get(CALLBACKS)
    assert response.status_code == 405 and response["Allow"] == "POST"


@pytest.mark.parametrize(
    ("length", "body", "error"),
    [
        ("abc", b"{}", BadRequest),
        ("-5", b"{}", BadRequest),
        ("11", b"x" * 11, PayloadTooLarge),  # declared too large: refused before reading
        ("5", b"x" * 50, PayloadTooLarge),  # lies about its size: cut off and refused
    ],
)
def test_the_body_reader(length: str, body: bytes, error: type[Exception]) -> None:
    request = RequestFactory().generic("POST", "/", body, content_type="application/json")
    request.META["CONTENT_LENGTH"] = length
    with pytest.raises(error):
        read_body(request, 10)


def test_the_body_reader_returns_a_body_within_the_limit() -> None:
    request = RequestFactory().generic("POST", "/", b"0123456789", content_type="text/plain")
    assert read_body(request, 10) == b"0123456789"
