"""The iTero HTTP client, with ``responses``: URL safety, OAuth, Discovery, the 401 retry,
redirects, and the streamed download's length check."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
import responses

from align_integration.client.errors import (
    AlignAuthenticationError,
    AlignConnectionError,
    AlignError,
    AlignNotFound,
)
from align_integration.client.itero import (
    IteroClient,
    IteroDownloadIncomplete,
    IteroDownloadTooLarge,
    IteroOAuthError,
    IteroUnsafeURL,
    check_url,
    host_allowed,
)
from align_integration.client.token import TokenCache

# The clients read the kill switch (a waffle switch, in the database) before sending.
pytestmark = pytest.mark.django_db

API = "https://api.itero.test"
V1 = f"{API}/api/third-party/v1"
ENDPOINTS = {
    "accounts": f"{V1}/accounts",
    "pair": f"{V1}/pair",
    "unpair": f"{V1}/unpair",
    "orders": f"{V1}/orders/lab",
    "order": f"{V1}/orders/{{rxId}}",
    "download": f"{V1}/orders/{{rxId}}/download/{{assetType}}",
    "return_scan": f"{V1}/orders/{{rxId}}/return",
}


def shared_tokens(*tokens: str) -> TokenCache:
    supply = iter(tokens)
    return TokenCache("itero", lambda: (next(supply), 3600), alias="default")


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("api.itero.test", [".itero.test"], True),
        ("itero.test", [".itero.test"], True),
        ("deep.api.itero.test", [".itero.test"], True),
        ("evilitero.test", [".itero.test"], False),
        ("itero.test.evil.net", [".itero.test"], False),
        ("api.itero.test", ["itero.test"], False),
        ("itero.test", ["itero.test"], True),
        ("API.ITERO.TEST", [".itero.test"], True),
    ],
)
def test_allowed_hosts_matching(host: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


@pytest.mark.parametrize(
    "url",
    [
        "http://api.itero.test/x",  # not https
        "https://evil.example.net/x",  # foreign host
        "https://user:pw@api.itero.test/x",  # credentials
        "ftp://api.itero.test/x",
        "https:///nohost",
        "http://127.0.0.1:8000/x",  # loopback, but not listed
        "http://localhost:8000/x",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(IteroUnsafeURL):
        check_url(url, [".itero.test"])


def test_listed_loopback_may_use_http() -> None:
    assert check_url("http://127.0.0.1:9/x", ["127.0.0.1"])
    with pytest.raises(IteroUnsafeURL):
        check_url("http://localhost:9/x", ["127.0.0.1"])  # another host name: not listed


@responses.activate
def test_code_exchange_and_refresh(itero_unit_settings: Any) -> None:
    answer = {"access_token": "a1", "refresh_token": "r1", "expires_in": 3600}
    token_call = responses.post("https://auth.itero.test/oauth/token", json=answer)
    client = IteroClient()
    token_set = client.exchange_code("the-code", "https://host.test/cb")
    assert (token_set.access_token, token_set.refresh_token) == ("a1", "r1")
    assert "a1" not in repr(token_set)
    body = token_call.calls[0].request.body
    assert "grant_type=authorization_code" in body and "client_secret=unit-secret" in body


@responses.activate
@pytest.mark.parametrize(
    ("status", "error", "permanent"),
    [(400, "invalid_grant", True), (401, "invalid_client", True), (400, "invalid_request", False)],
)
def test_refused_refresh(
    itero_unit_settings: Any, status: int, error: str, permanent: bool
) -> None:
    responses.post("https://auth.itero.test/oauth/token", json={"error": error}, status=status)
    with pytest.raises(IteroOAuthError) as caught:
        IteroClient().refresh("old")
    assert caught.value.error == error and caught.value.permanent is permanent


@responses.activate
@pytest.mark.parametrize(
    "bad_url", ["https://evil.example.net/orders", "http://api.itero.test/orders"]
)
def test_discovery_naming_a_foreign_or_plain_http_url_is_refused(
    itero_unit_settings: Any, bad_url: str
) -> None:
    responses.get(
        f"{API}/api/v2/discovery",
        json={"region": "us", "endpoints": {**ENDPOINTS, "orders": bad_url}},
    )
    evil = responses.get(bad_url, json={"orders": []})
    client = IteroClient(tokens=shared_tokens("tok-1"))
    with pytest.raises(IteroUnsafeURL):
        client.discover()
    assert client.endpoints == {}  # nothing taken from that answer
    assert evil.call_count == 0


@responses.activate
def test_a_stored_foreign_endpoint_is_refused_before_the_token_is_looked_up(
    itero_unit_settings: Any,
) -> None:
    evil = responses.get("https://evil.example.net/orders", json={"orders": []})

    def no_token() -> tuple[str, int]:
        raise AssertionError("no token may be fetched for a refused URL")

    tokens = TokenCache("itero", no_token, alias="default")
    client = IteroClient(tokens=tokens, endpoints={"orders": "https://evil.example.net/orders"})
    with pytest.raises(IteroUnsafeURL, match="ALLOWED_HOSTS"):
        client.list_orders()
    assert evil.call_count == 0
    assert not any("evil" in call.request.url for call in responses.calls)


@responses.activate
def test_a_401_refreshes_once_then_succeeds(itero_unit_settings: Any) -> None:
    orders = responses.get(ENDPOINTS["orders"], status=401)
    client = IteroClient(tokens=shared_tokens("old", "new"), endpoints=ENDPOINTS)
    responses.get(ENDPOINTS["orders"], json={"orders": [{"rxId": "rx-1"}]})
    assert client.list_orders() == [{"rxId": "rx-1"}]
    sent = [call.request.headers["Authorization"] for call in responses.calls]
    assert sent == ["Bearer old", "Bearer new"]
    assert orders.call_count == 1


@responses.activate
def test_a_second_401_is_an_authentication_error(itero_unit_settings: Any) -> None:
    responses.get(ENDPOINTS["orders"], status=401)
    client = IteroClient(tokens=shared_tokens("a", "b"), endpoints=ENDPOINTS)
    with pytest.raises(AlignAuthenticationError):
        client.list_orders()


@responses.activate
def test_redirects_are_never_followed(itero_unit_settings: Any) -> None:
    responses.get(
        ENDPOINTS["orders"], status=302, headers={"Location": "https://evil.example.net/steal"}
    )
    evil = responses.get("https://evil.example.net/steal", json={})
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    # The session (max_redirects=0) turns a 3xx into an error; nothing is followed.
    with pytest.raises(AlignError):
        client.list_orders()
    assert evil.call_count == 0
    assert [call.request.url for call in responses.calls] == [ENDPOINTS["orders"]]


@responses.activate
def test_fallback_paths_are_used_without_discovery(itero_unit_settings: Any) -> None:
    responses.get(f"{V1}/orders/rx%2F1", json={"rxId": "rx/1"})
    client = IteroClient(tokens=shared_tokens("tok"))
    assert client.get_order("rx/1") == {"rxId": "rx/1"}  # placeholder filled, escaped


@responses.activate
def test_download_streams_and_checks_the_length(itero_unit_settings: Any) -> None:
    payload = b"PK" + b"x" * 5000
    responses.get(f"{V1}/orders/rx-1/download/ide", body=payload)
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    out = io.BytesIO()
    assert client.download("rx-1", out) == len(payload)
    assert out.getvalue() == payload


@responses.activate
def test_download_shorter_than_content_length_is_incomplete(itero_unit_settings: Any) -> None:
    responses.get(
        f"{V1}/orders/rx-1/download/ide",
        body=b"x" * 10,
        headers={"Content-Length": "100"},
        auto_calculate_content_length=False,
    )
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    with pytest.raises(IteroDownloadIncomplete):
        client.download("rx-1", io.BytesIO())


@responses.activate
def test_download_over_the_limit_is_refused(itero_unit_settings: Any) -> None:
    responses.get(f"{V1}/orders/rx-1/download/ide", body=b"x" * 100)
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    with pytest.raises(IteroDownloadTooLarge):
        client.download("rx-1", io.BytesIO(), max_bytes=50)


@responses.activate
def test_download_404_means_not_ready(itero_unit_settings: Any) -> None:
    responses.get(f"{V1}/orders/rx-1/download/ide", status=404, json={"errors": ["File Not Found"]})
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    with pytest.raises(AlignNotFound):
        client.download("rx-1", io.BytesIO())


@responses.activate
def test_connection_errors_surface_as_ours(itero_unit_settings: Any) -> None:
    responses.get(ENDPOINTS["orders"], body=requests.ConnectionError("reset"))
    client = IteroClient(tokens=shared_tokens("tok"), endpoints=ENDPOINTS)
    with pytest.raises(AlignConnectionError) as caught:
        client.list_orders()
    assert caught.value.retryable is True
