"""The Align service client with mocked HTTP (``responses``): token, 401, errors, no PHI in URLs.

``responses`` replaces the adapter's ``send``, so urllib3's retries do not run here; they
are tested against a local server in tests/test_client_http.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from responses import matchers

from align_integration.client import (
    AlignAuthenticationError,
    AlignNotFound,
    AlignProtocolError,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceClient,
    AlignServiceUnavailable,
)
from align_integration.client.errors import AlignConnectionError, AlignTimeout
from align_integration.client.http import USER_AGENT

# The clients read the kill switch (a waffle switch, in the database) before sending.
pytestmark = pytest.mark.django_db

BASE = "https://align-service.test"


def token_reply(token: str = "tok-1", expires_in: int = 3600) -> dict[str, Any]:
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_token_is_fetched_once_and_cached(mocked: Any) -> None:
    token_call = mocked.post(
        f"{BASE}/auth/token",
        json=token_reply(),
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": "test-client",
                    "client_secret": "test-secret",
                }
            )
        ],
    )
    assert AlignServiceClient().token == "tok-1"
    assert AlignServiceClient().token == "tok-1"  # another client, same cache
    assert token_call.call_count == 1


def test_token_near_expiry_is_refreshed(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply("short", expires_in=30))
    mocked.post(f"{BASE}/auth/token", json=token_reply("fresh"))
    client = AlignServiceClient()
    assert client.token == "short"
    # 30 s is inside the 60 s refresh margin: the next use fetches a new token.
    assert client.token == "fresh"


def test_requests_carry_bearer_user_agent_and_idempotency_key(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    create = mocked.post(f"{BASE}/patients", json={"patientId": "P-1"})
    answer = AlignServiceClient().create_patient({"caseId": "1"}, idempotency_key="key-1")
    assert answer == {"patientId": "P-1"}
    sent = create.calls[0].request
    assert sent.headers["Authorization"] == "Bearer tok-1"
    assert sent.headers["Idempotency-Key"] == "key-1"
    assert sent.headers["User-Agent"] == USER_AGENT
    assert "django-align-integration/" in USER_AGENT


def test_401_refreshes_once_and_retries_once_with_the_same_key(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply("old"))
    mocked.post(f"{BASE}/auth/token", json=token_reply("new"))
    mocked.post(f"{BASE}/orders", status=401, json={"errors": ["expired"]})
    mocked.post(f"{BASE}/orders", json={"orderId": "O-1"})
    client = AlignServiceClient()
    assert client.create_order({"caseId": "1"}, idempotency_key="k") == {"orderId": "O-1"}
    calls = [c.request for c in mocked.calls if c.request.url.endswith("/orders")]
    assert [c.headers["Authorization"] for c in calls] == ["Bearer old", "Bearer new"]
    assert [c.headers["Idempotency-Key"] for c in calls] == ["k", "k"]
    assert client.token == "new"


def test_401_after_refresh_is_a_clear_authentication_error(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply("a"))
    mocked.post(f"{BASE}/auth/token", json=token_reply("b"))
    mocked.post(f"{BASE}/orders", status=401, json={"errors": ["nope"]})
    with pytest.raises(AlignAuthenticationError) as caught:
        AlignServiceClient().create_order({}, idempotency_key="k")
    assert caught.value.status_code == 401
    assert "fresh token" in str(caught.value)
    assert len([c for c in mocked.calls if c.request.url.endswith("/orders")]) == 2


def test_bad_credentials_are_an_authentication_error(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", status=401, json={"errors": ["invalid client"]})
    with pytest.raises(AlignAuthenticationError):
        AlignServiceClient().token


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [
        (400, AlignRequestRejected, False),
        (404, AlignNotFound, False),
        (409, AlignRequestRejected, False),
        (422, AlignRequestRejected, False),
        (429, AlignRateLimited, True),
        (500, AlignServiceUnavailable, True),
        (503, AlignServiceUnavailable, True),
    ],
)
def test_status_maps_to_one_error_class(
    mocked: Any, status: int, error_class: type, retryable: bool
) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(
        f"{BASE}/patients",
        status=status,
        json={"errors": ["first reason", "second reason"]},
        headers={"X-Request-Id": "req-42", "Retry-After": "3"},
    )
    with pytest.raises(error_class) as caught:
        AlignServiceClient().create_patient({}, idempotency_key="k")
    error = caught.value
    assert error.status_code == status
    assert error.errors == ["first reason", "second reason"]
    assert error.request_id == "req-42"
    assert error.retryable is retryable
    assert error.retry_after == 3.0  # what the background retry waits at least
    assert "first reason" not in str(error)  # the message holds no body


def test_error_body_that_is_not_json_still_maps(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(f"{BASE}/patients", status=502, body="<html>bad gateway</html>")
    with pytest.raises(AlignServiceUnavailable) as caught:
        AlignServiceClient().create_patient({}, idempotency_key="k")
    assert caught.value.errors == []


def test_a_2xx_answer_that_is_not_json_is_a_protocol_error_not_a_4xx(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(f"{BASE}/orders", status=200, body="<html>captive portal</html>")
    with pytest.raises(AlignProtocolError) as caught:
        AlignServiceClient().create_order({}, idempotency_key="k")
    assert not isinstance(caught.value, AlignRequestRejected)
    assert caught.value.ambiguous  # a POST: the service may have acted
    assert caught.value.http_status == 502


def test_an_empty_2xx_answer_is_an_empty_object(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.put(f"{BASE}/orders/17/modify", status=200, body="")
    answer = AlignServiceClient().clincheck_revise(
        case_id="17", mrn="m", comments="c", idempotency_key="k"
    )
    assert answer == {}


def test_connection_error_is_ambiguous_and_chained(mocked: Any) -> None:
    import requests

    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(f"{BASE}/patients", body=requests.ConnectionError("reset by peer"))
    with pytest.raises(AlignConnectionError) as caught:
        AlignServiceClient().create_patient({}, idempotency_key="k")
    assert caught.value.ambiguous and caught.value.retryable
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert caught.value.http_status == 502


def test_timeout_is_a_timeout_error(mocked: Any) -> None:
    import requests

    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(f"{BASE}/orders", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(AlignTimeout) as caught:
        AlignServiceClient().create_order({}, idempotency_key="k")
    assert caught.value.http_status == 504


def test_patient_data_travels_only_in_bodies(mocked: Any) -> None:
    mocked.post(f"{BASE}/auth/token", json=token_reply())
    mocked.post(f"{BASE}/patients", json={"patientId": "P"})
    mocked.put(f"{BASE}/orders/17/accept", json={"status": "accepted"})
    mocked.put(f"{BASE}/orders/17/modify", json={"status": "revision_requested"})
    client = AlignServiceClient()
    client.create_patient({"mrn": "MRN-SECRET", "firstName": "Zed"}, idempotency_key="k")
    client.clincheck_accept(
        case_id="17", mrn="MRN-SECRET", vault_id="v", external_key="e", idempotency_key="k2"
    )
    client.clincheck_revise(case_id="17", mrn="MRN-SECRET", comments="c", idempotency_key="k3")
    for call in mocked.calls:
        assert "MRN-SECRET" not in call.request.url
        assert "Zed" not in call.request.url
    accept = [c for c in mocked.calls if c.request.url.endswith("/accept")][0].request
    assert accept.method == "PUT"
    assert "vault_id=v" in accept.body and "external_key=e" in accept.body
    patient_body = [c for c in mocked.calls if c.request.url.endswith("/patients")][0].request.body
    assert json.loads(patient_body)["mrn"] == "MRN-SECRET"


def test_paths_are_configurable(mocked: Any, settings: Any) -> None:
    config = dict(settings.ALIGN_INTEGRATION)
    config["SERVICE"] = {
        **config["SERVICE"],
        "PATHS": {"create_order": "/v2/primary-orders", "token": "/oauth2/token"},
    }
    settings.ALIGN_INTEGRATION = config
    mocked.post(f"{BASE}/oauth2/token", json=token_reply())
    create = mocked.post(f"{BASE}/v2/primary-orders", json={"orderId": "O"})
    AlignServiceClient().create_order({}, idempotency_key="k")
    assert create.call_count == 1
