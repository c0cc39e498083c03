"""The iTero pages and the notification webhook: authorisation, the OAuth ``state`` check,
and bad input answered with a 4xx and a reason — never a 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse, reverse_lazy

from align_integration.models import IteroConnection, IteroNotification
from tests.itero.helpers import ACCOUNT, notification_url, unpair_url

TOKEN = "unit-notify-token"


def post_raw(client: Client, body: bytes | str, token: str = TOKEN, **extra: Any) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.generic(
        "POST", notification_url(token), data, content_type="application/json", **extra
    )


def test_a_good_notification_is_stored(client: Client, paired_connection: Any) -> None:
    response = post_raw(client, json.dumps({"rxId": "rx-1", "accountNumber": ACCOUNT}))
    assert response.status_code == 202 and response.json() == {"status": "stored"}
    stored = IteroNotification.objects.get()
    assert (stored.rx_id, stored.account_number, stored.state) == ("rx-1", ACCOUNT, "received")


def test_an_unknown_account_is_ignored(client: Client, paired_connection: Any) -> None:
    response = post_raw(client, json.dumps({"rxId": "rx-1", "accountNumber": "LAB-9"}))
    assert response.status_code == 202 and response.json() == {"status": "ignored"}
    assert IteroNotification.objects.count() == 0


def test_nothing_is_accepted_while_unpaired(
    client: Client, db: Any, itero_unit_settings: Any
) -> None:
    response = post_raw(client, json.dumps({"rxId": "rx-1", "accountNumber": ACCOUNT}))
    assert response.status_code == 202 and response.json() == {"status": "ignored"}


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"not json", 400, "JSON"),
        (b"\xff\xfe\x00", 400, "JSON"),
        (b"", 400, "JSON"),
        (b"[1, 2]", 400, "object"),
        (b"null", 400, "object"),
        (b'{"accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": "", "accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": true, "accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": {"a": 1}, "accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": "rx\\n1", "accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": "' + b"x" * 500 + b'", "accountNumber": "LAB-1001"}', 400, "rxId"),
        (b'{"rxId": "rx-1"}', 400, "accountNumber"),
        (b'{"rxId": "rx-1", "accountNumber": 17.5}', 400, "accountNumber"),
        (
            b'{"rxId": "rx-1", "accountNumber": "LAB-1001", "pad": "' + b"x" * 17000 + b'"}',
            413,
            "bytes",
        ),
    ],
)
def test_bad_bodies_get_a_reason_never_a_500(
    client: Client, paired_connection: Any, body: bytes, status: int, reason: str
) -> None:
    response = post_raw(client, body)
    assert response.status_code == status, response.content
    assert reason in response.json()["reason"]
    assert IteroNotification.objects.count() == 0


def test_a_lying_content_length_is_refused(client: Client, paired_connection: Any) -> None:
    response = post_raw(client, b"{}", CONTENT_LENGTH="999999")
    assert response.status_code == 413
    response = post_raw(client, b"{}", CONTENT_LENGTH="abc")
    assert response.status_code == 400


def test_numeric_ids_are_accepted(client: Client, paired_connection: Any) -> None:
    paired_connection.account_number = "1001"
    paired_connection.save()
    response = post_raw(client, json.dumps({"rxId": 17544365, "accountNumber": 1001}))
    assert response.status_code == 202 and response.json() == {"status": "stored"}


@pytest.mark.parametrize("token", ["wrong", "unit-notify-tokeN", "unit-notify-token-x", "x" * 300])
def test_a_wrong_token_is_404(client: Client, paired_connection: Any, token: str) -> None:
    response = post_raw(client, json.dumps({"rxId": "rx-1", "accountNumber": ACCOUNT}), token)
    assert response.status_code == 404
    assert IteroNotification.objects.count() == 0


def test_no_configured_token_means_404(
    client: Client, paired_connection: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "ITERO": {**settings.ALIGN_INTEGRATION["ITERO"], "NOTIFICATION_TOKEN": ""},
    }
    assert post_raw(client, b"{}", token="anything").status_code == 404


def test_get_is_405_and_the_token_never_reaches_a_log(
    client: Client, paired_connection: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert client.get(notification_url(TOKEN)).status_code == 405
    assert post_raw(client, b"nope").status_code == 400
    assert post_raw(client, b"{}", token="guess").status_code == 404
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert all("guess" not in record.getMessage() for record in caplog.records)


def test_no_csrf_token_is_needed(paired_connection: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = post_raw(client, json.dumps({"rxId": "rx-1", "accountNumber": ACCOUNT}))
    assert response.status_code == 202


# -- staff pages --------------------------------------------------------------------------------
STAFF_PAGES = [
    reverse_lazy("align_integration:itero-connect"),
    reverse_lazy("align_integration:itero-oauth-callback"),
    reverse_lazy("align_integration:itero-status"),
    reverse_lazy("align_integration:itero-unpair", kwargs={"account_number": ACCOUNT}),
]


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_staff_pages_need_a_login(
    client: Client, db: Any, itero_unit_settings: Any, url: str
) -> None:
    response = client.get(str(url))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_staff_pages_refuse_non_staff(
    client: Client, django_user_model: Any, itero_unit_settings: Any, url: str
) -> None:
    client.force_login(django_user_model.objects.create_user(username="u", password="pw"))
    assert client.get(str(url)).status_code == 403


def test_connect_redirects_to_login_with_a_session_state(
    staff_client: Client, itero_unit_settings: Any
) -> None:
    response = staff_client.get(reverse("align_integration:itero-connect"))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://login.itero.test/authorize?")
    state = staff_client.session["align_integration.itero.oauth_state"]
    assert f"state={state}" in location and "response_type=code" in location
    assert "client_id=unit-client" in location
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Falign%2Fitero%2Foauth%2Fcallback%2F" in location


def test_urls_given_to_itero_are_built_on_the_public_url(
    staff_client: Client, itero_unit_settings: Any, settings: Any
) -> None:
    config = settings.ALIGN_INTEGRATION
    settings.ALIGN_INTEGRATION = {
        **config,
        "ITERO": {**config["ITERO"], "PUBLIC_URL": "https://lab.example.com/"},
    }
    location = staff_client.get(reverse("align_integration:itero-connect"))["Location"]
    assert "redirect_uri=https%3A%2F%2Flab.example.com%2Falign%2Fitero%2Foauth%2F" in location


def test_connect_unconfigured_is_a_page_not_a_500(staff_client: Client, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "ITERO": {"LOGIN_URL": ""}}
    response = staff_client.get(reverse("align_integration:itero-connect"))
    assert response.status_code == 503
    assert b"not configured" in response.content


@pytest.mark.parametrize("query", ["", "?code=c", "?code=c&state=forged", "?state=&code=c"])
def test_a_state_mismatch_is_400(
    staff_client: Client, itero_unit_settings: Any, query: str
) -> None:
    staff_client.get(reverse("align_integration:itero-connect"))
    response = staff_client.get(reverse("align_integration:itero-oauth-callback") + query)
    assert response.status_code == 400


def test_an_oauth_error_is_400(staff_client: Client, itero_unit_settings: Any) -> None:
    staff_client.get(reverse("align_integration:itero-connect"))
    state = staff_client.session["align_integration.itero.oauth_state"]
    url = reverse("align_integration:itero-oauth-callback")
    response = staff_client.get(f"{url}?error=access_denied&state={state}")
    assert response.status_code == 400


def test_pair_needs_post_csrf_and_an_account(staff_user: Any, itero_unit_settings: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    url = reverse("align_integration:itero-pair")
    assert client.get(url).status_code == 405
    assert client.post(url, {"account_number": ACCOUNT}).status_code == 403  # no CSRF token
    relaxed = Client()
    relaxed.force_login(staff_user)
    assert relaxed.post(url, {"account_number": ""}).status_code == 400
    assert relaxed.post(url, {"account_number": ACCOUNT}).status_code == 409  # not signed in


def test_status_page_shows_the_repairing_banner(
    staff_client: Client, paired_connection: Any
) -> None:
    paired_connection.set_state(IteroConnection.NEEDS_REPAIRING, "refresh refused")
    paired_connection.save()
    page = staff_client.get(reverse("align_integration:itero-status")).content.decode()
    assert 'id="itero-needs-repairing"' in page
    assert reverse("align_integration:itero-connect") in page


def test_unpair_page_warns_about_every_user(staff_client: Client, paired_connection: Any) -> None:
    page = staff_client.get(unpair_url()).content.decode()
    assert "every user" in page and "notifications" in page and ACCOUNT in page


def test_unpairing_an_unknown_account_is_404(staff_client: Client, paired_connection: Any) -> None:
    assert staff_client.get(unpair_url("LAB-NOPE")).status_code == 404
    assert staff_client.post(unpair_url("LAB-NOPE")).status_code == 404
    paired_connection.refresh_from_db()
    assert paired_connection.state == IteroConnection.PAIRED
