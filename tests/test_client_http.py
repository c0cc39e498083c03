"""Both clients through the real HTTP adapter against a local server (tests/http_server.py):
urllib3's retries really run, connections really drop, bodies are really streamed.

What a host relies on: a write without an idempotency key (a token grant, a pairing, a
return scan) is never sent twice because its answer was lost; a keyed write and a GET are
retried; a 401 refreshes the token once; a malformed or oversized answer is a protocol
error, and an oversized one is not read whole.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from align_integration.client import (
    AlignAuthenticationError,
    AlignConnectionError,
    AlignProtocolError,
    AlignRateLimited,
    AlignRequestRejected,
    AlignServiceClient,
    AlignServiceUnavailable,
    AlignTimeout,
)
from align_integration.client.itero import IteroClient
from align_integration.client.token import TokenCache
from tests.http_server import (
    ScriptedServer,
    Streamed,
    answer,
    drop,
    late,
    running_server,
    stream,
)

# The clients read the kill switch (a waffle switch, in the database) before sending.
pytestmark = pytest.mark.django_db

RETRIES = 2
ORDERS = "/api/third-party/v1/orders/lab"
MiB = 1024 * 1024


@pytest.fixture
def server(settings: Any) -> Iterator[ScriptedServer]:
    """The scripted server, with both clients' settings pointed at it."""
    with running_server() as scripted:
        scripted.default("POST", "/auth/token", scripted.issue_token)
        scripted.default(
            "POST",
            "/oauth/token",
            lambda: answer(200, {"access_token": "a", "refresh_token": "r", "expires_in": 60}),
        )
        settings.ALIGN_INTEGRATION = {
            **settings.ALIGN_INTEGRATION,
            "SERVICE": {
                **settings.ALIGN_INTEGRATION["SERVICE"],
                "BASE_URL": scripted.url,
                "RETRIES": RETRIES,
                "BACKOFF_FACTOR": 0,
                "BACKOFF_JITTER": 0,
                "RETRY_AFTER_MAX": 1,
                "READ_TIMEOUT": 0.5,
            },
            "ITERO": {
                "OAUTH_BASE_URL": scripted.url,
                "BASE_URL": scripted.url,
                "LOGIN_URL": f"{scripted.url}/login",
                "CLIENT_ID": "lab-client",
                "CLIENT_SECRET": "lab-secret",
                "ALLOWED_HOSTS": ["127.0.0.1"],
                "NOTIFICATION_TOKEN": "n",
                "READ_TIMEOUT": 0.5,
            },
        }
        yield scripted


def itero_client(*tokens: str) -> IteroClient:
    supply = iter(tokens or ("lab-token",))
    return IteroClient(tokens=TokenCache("itero", lambda: (next(supply), 3600)))


# -- a lost answer: sent again only when that cannot act twice -----------------------------
def test_a_keyed_post_whose_answer_is_dropped_is_sent_again_with_the_same_key(
    server: ScriptedServer,
) -> None:
    server.on("POST", "/patients", drop())
    server.on("POST", "/patients", answer(200, {"patientId": "P-1"}))
    client = AlignServiceClient()
    assert client.create_patient({"caseId": "1"}, idempotency_key="key-1") == {"patientId": "P-1"}
    sent = server.requests("POST", "/patients")
    assert [seen.headers["Idempotency-Key"] for seen in sent] == ["key-1", "key-1"]


def test_the_service_token_grant_whose_answer_is_dropped_is_sent_once(
    server: ScriptedServer,
) -> None:
    server.on("POST", "/auth/token", drop())
    with pytest.raises(AlignConnectionError) as caught:
        AlignServiceClient().token  # noqa: B018 - fetches the token
    assert caught.value.ambiguous
    assert len(server.requests("POST", "/auth/token")) == 1


ITERO_WRITES: dict[str, tuple[str, Callable[[IteroClient], Any]]] = {
    "code exchange": ("/oauth/token", lambda c: c.exchange_code("code", "https://h.test/cb")),
    "refresh": ("/oauth/token", lambda c: c.refresh("refresh-1")),
    "pair": ("/api/third-party/v1/pair", lambda c: c.pair("LAB-1", "https://h.test/n")),
    "unpair": ("/api/third-party/v1/unpair", lambda c: c.unpair("LAB-1")),
    "return scan": (
        "/api/third-party/v1/orders/rx-1/return",
        lambda c: c.return_scan("rx-1", "blurred"),
    ),
}


@pytest.mark.parametrize("name", list(ITERO_WRITES))
def test_an_itero_write_whose_answer_is_dropped_is_sent_once(
    server: ScriptedServer, name: str
) -> None:
    path, call = ITERO_WRITES[name]
    server.on("POST", path, drop())
    with pytest.raises(AlignConnectionError):
        call(itero_client())
    assert len(server.requests("POST", path)) == 1


@pytest.mark.parametrize("name", ["refresh", "return scan"])
def test_an_itero_write_answered_503_is_not_retried(server: ScriptedServer, name: str) -> None:
    path, call = ITERO_WRITES[name]
    server.on("POST", path, answer(503, {"errors": ["busy"]}))
    with pytest.raises(AlignServiceUnavailable):
        call(itero_client())
    assert len(server.requests("POST", path)) == 1


def test_an_itero_refresh_that_times_out_is_sent_once(server: ScriptedServer) -> None:
    server.on("POST", "/oauth/token", late(1.0, answer(200, {"access_token": "late"})))
    with pytest.raises(AlignTimeout):
        itero_client().refresh("refresh-1")
    assert len(server.requests("POST", "/oauth/token")) == 1


# -- GETs and keyed writes are retried on 429/5xx and lost answers --------------------------
def test_a_get_is_retried_on_503_until_it_succeeds(server: ScriptedServer) -> None:
    server.on("GET", "/patients", answer(503), answer(503))
    server.on("GET", "/patients", answer(200, {"results": [{"patientId": "P-1"}]}))
    assert AlignServiceClient().find_patients("17") == [{"patientId": "P-1"}]
    assert len(server.requests("GET", "/patients")) == 3


def test_a_get_gives_up_after_the_retry_budget(server: ScriptedServer) -> None:
    server.on("GET", "/patients", *[answer(503, {"errors": ["down"]})] * 5)
    with pytest.raises(AlignServiceUnavailable) as caught:
        AlignServiceClient().find_patients("17")
    assert caught.value.errors == ["down"]
    assert len(server.requests("GET", "/patients")) == RETRIES + 1


def test_an_itero_get_is_retried_on_503_and_after_a_timeout(server: ScriptedServer) -> None:
    server.on("GET", ORDERS, answer(503), late(1.0, answer(200, {"orders": []})))
    server.on("GET", ORDERS, answer(200, {"orders": [{"rxId": "rx-1"}]}))
    assert itero_client().list_orders() == [{"rxId": "rx-1"}]
    assert len(server.requests("GET", ORDERS)) == 3


def test_a_keyed_put_is_retried_on_503(server: ScriptedServer) -> None:
    server.on("PUT", "/orders/17/accept", answer(503), answer(200, {"status": "accepted"}))
    result = AlignServiceClient().clincheck_accept(
        case_id="17", mrn="m", vault_id="v", external_key="e", idempotency_key="k"
    )
    assert result == {"status": "accepted"}
    assert len(server.requests("PUT", "/orders/17/accept")) == 2


@pytest.mark.parametrize(
    ("status", "headers", "error_class"),
    [
        (409, {}, AlignRequestRejected),
        (422, {}, AlignRequestRejected),
        (413, {"Retry-After": "1"}, AlignRequestRejected),  # urllib3 alone would retry this
    ],
)
def test_other_4xx_are_never_retried(
    server: ScriptedServer, status: int, headers: dict[str, str], error_class: type
) -> None:
    server.on("GET", "/orders", *[answer(status, {"errors": ["no"]}, headers=headers)] * 3)
    with pytest.raises(error_class):
        AlignServiceClient().find_orders("17")
    assert len(server.requests("GET", "/orders")) == 1


def test_a_short_retry_after_is_waited_in_request(server: ScriptedServer) -> None:
    server.on("GET", "/orders", answer(429, headers={"Retry-After": "1"}))
    server.on("GET", "/orders", answer(200, {"results": []}))
    started = time.monotonic()
    assert AlignServiceClient().find_orders("17") == []
    assert time.monotonic() - started >= 0.9
    assert len(server.requests("GET", "/orders")) == 2


def test_a_retry_after_over_the_cap_goes_to_the_background_retry(server: ScriptedServer) -> None:
    server.on("GET", "/orders", *[answer(429, headers={"Retry-After": "120"})] * 3)
    with pytest.raises(AlignRateLimited) as caught:
        AlignServiceClient().find_orders("17")
    assert caught.value.retry_after == 120
    assert len(server.requests("GET", "/orders")) == 1


# -- 401: refresh the token once, send once more --------------------------------------------
def test_a_401_refreshes_the_token_once_and_resends_once(server: ScriptedServer) -> None:
    server.on("POST", "/orders", answer(401), answer(200, {"orderId": "O-1"}))
    client = AlignServiceClient()
    assert client.create_order({"caseId": "1"}, idempotency_key="k") == {"orderId": "O-1"}
    sent = server.requests("POST", "/orders")
    assert [seen.headers["Authorization"] for seen in sent] == ["Bearer tok-1", "Bearer tok-2"]
    assert [seen.headers["Idempotency-Key"] for seen in sent] == ["k", "k"]
    assert len(server.requests("POST", "/auth/token")) == 2


def test_a_second_401_is_an_authentication_error_after_one_refresh(
    server: ScriptedServer,
) -> None:
    server.on("GET", "/orders", *[answer(401, {"errors": ["expired"]})] * 4)
    with pytest.raises(AlignAuthenticationError, match="fresh token"):
        AlignServiceClient().find_orders("17")
    assert len(server.requests("GET", "/orders")) == 2
    assert len(server.requests("POST", "/auth/token")) == 2


def test_an_itero_401_refreshes_the_shared_token_once(server: ScriptedServer) -> None:
    server.on("GET", ORDERS, answer(401), answer(200, {"orders": []}))
    assert itero_client("old", "new").list_orders() == []
    sent = [seen.headers["Authorization"] for seen in server.requests("GET", ORDERS)]
    assert sent == ["Bearer old", "Bearer new"]


# -- malformed and oversized answers ----------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "problem"), [(b"<html>proxy</html>", "not JSON"), (b"[1, 2]", "not a JSON object")]
)
def test_a_malformed_2xx_answer_to_a_post_is_an_ambiguous_protocol_error(
    server: ScriptedServer, raw: bytes, problem: str
) -> None:
    server.on("POST", "/patients", answer(200, raw=raw))
    with pytest.raises(AlignProtocolError, match=problem) as caught:
        AlignServiceClient().create_patient({}, idempotency_key="k")
    error = caught.value
    assert error.ambiguous and error.retryable
    assert error.status_code is None and error.http_status == 502
    assert error.response_status == 200
    assert len(server.requests("POST", "/patients")) == 1


def test_a_malformed_answer_to_a_get_is_a_protocol_error_that_did_not_act(
    server: ScriptedServer,
) -> None:
    server.on("GET", ORDERS, answer(200, raw=b"{truncated"))
    with pytest.raises(AlignProtocolError) as caught:
        itero_client().list_orders()
    assert not caught.value.ambiguous


def test_a_body_that_cannot_be_decoded_is_a_protocol_error(server: ScriptedServer) -> None:
    server.on("GET", "/orders", answer(200, raw=b"not gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(AlignProtocolError, match="decoded"):
        AlignServiceClient().find_orders("17")


def test_a_token_answer_without_access_token_is_a_protocol_error(
    server: ScriptedServer,
) -> None:
    server.on("POST", "/oauth/token", answer(200, {"token_type": "Bearer"}))
    with pytest.raises(AlignProtocolError, match="access_token"):
        itero_client().exchange_code("code", "https://h.test/cb")


@pytest.mark.parametrize("declared", [None, 50 * MiB])
def test_an_oversized_answer_is_refused_without_reading_it_all(
    server: ScriptedServer, settings: Any, declared: int | None
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "MAX_RESPONSE_BYTES": 4096}
    streamed = Streamed()
    server.on("GET", "/patients", stream(streamed, declared_length=declared))
    with pytest.raises(AlignProtocolError, match="bytes"):
        AlignServiceClient().find_patients("17")
    assert streamed.done.wait(10)
    assert streamed.cut_by_client
    assert streamed.sent < 32 * MiB  # the socket buffers, not the 256 MiB on offer


def test_an_oversized_error_answer_keeps_its_status_and_is_not_drained(
    server: ScriptedServer, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "MAX_RESPONSE_BYTES": 4096}
    records = [Streamed() for _ in range(RETRIES + 1)]
    server.on("GET", "/patients", *[stream(record, status=503) for record in records])
    with pytest.raises(AlignServiceUnavailable):
        AlignServiceClient().find_patients("17")
    assert len(server.requests("GET", "/patients")) == RETRIES + 1
    for record in records:  # urllib3 would have read each retried answer to its end
        assert record.done.wait(10)
        assert record.cut_by_client and record.sent < 32 * MiB


def test_a_scan_download_larger_than_the_answer_cap_still_streams_to_the_file(
    server: ScriptedServer, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "MAX_RESPONSE_BYTES": 4096}
    payload = b"PK" + bytes(range(256)) * 8192  # 2 MiB
    path = "/api/third-party/v1/orders/rx-1/download/ide"
    server.on("GET", path, answer(200, raw=payload, headers={"Content-Type": "application/zip"}))
    out = io.BytesIO()
    assert itero_client().download("rx-1", out) == len(payload)
    assert out.getvalue() == payload


# -- the create_session hook -------------------------------------------------------------------
class TaggedClient(AlignServiceClient):
    def create_session(self) -> requests.Session:
        session = super().create_session()
        session.headers["X-Egress"] = "proxy-a"
        return session


def test_create_session_can_be_overridden_and_keeps_the_retry_policy(
    server: ScriptedServer,
) -> None:
    server.on("GET", "/orders", answer(503), answer(200, {"results": []}))
    client = TaggedClient()
    assert client.find_orders("17") == []
    sent = server.requests("GET", "/orders")
    assert [seen.headers.get("X-Egress") for seen in sent] == ["proxy-a", "proxy-a"]
    client.close()
