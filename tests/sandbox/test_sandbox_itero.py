"""The sandbox's iTero lab API: OAuth, Discovery, pairing, notifications, orders, downloads."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import REDIRECT_URI, itero_code, itero_exchange

V1 = "/api/third-party/v1"


def endpoints(sandbox: Sandbox, headers: dict[str, str]) -> dict[str, str]:
    answer = requests.get(f"{sandbox.url}/api/v2/discovery", headers=headers, timeout=5)
    assert answer.status_code == 200
    return dict(answer.json()["endpoints"])


def pair(sandbox: Sandbox, headers: dict[str, str], callback_url: str | None) -> dict[str, Any]:
    answer = requests.post(
        f"{sandbox.url}{V1}/pair",
        json={"accountNumber": "LAB-1001", "callbackUrl": callback_url},
        headers=headers,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def download(
    sandbox: Sandbox, headers: dict[str, str], rx_id: str, asset: str = "ide", **kwargs: Any
) -> requests.Response:
    return requests.get(
        f"{sandbox.url}{V1}/orders/{rx_id}/download/{asset}", headers=headers, timeout=10, **kwargs
    )


# --- OAuth -------------------------------------------------------------------------------------


def test_login_redirects_with_code_and_state(sandbox: Sandbox) -> None:
    answer = requests.get(
        f"{sandbox.url}/itero/login",
        params={
            "client_id": "itero-client",
            "redirect_uri": REDIRECT_URI + "?x=1",
            "response_type": "code",
            "state": "abc",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["abc"] and query["x"] == ["1"] and query["code"][0]


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "stranger", "response_type": "code"},
        {"client_id": "itero-client", "response_type": "token"},
    ],
)
def test_login_rejects_bad_requests(sandbox: Sandbox, params: dict[str, str]) -> None:
    answer = requests.get(
        f"{sandbox.url}/itero/login",
        params={**params, "redirect_uri": REDIRECT_URI, "state": "s"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 400


def test_code_exchange_is_single_use_and_checks_redirect(sandbox: Sandbox) -> None:
    code = itero_code(sandbox)
    wrong_redirect = itero_exchange(
        sandbox,
        grant_type="authorization_code",
        code=code,
        redirect_uri="https://elsewhere.example/cb",
    )
    assert wrong_redirect.status_code == 400
    assert wrong_redirect.json() == {"error": "invalid_grant"}
    code = itero_code(sandbox)
    good = itero_exchange(
        sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI
    )
    assert good.status_code == 200
    body = good.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    again = itero_exchange(
        sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI
    )
    assert again.status_code == 400
    wrong_secret = itero_exchange(
        sandbox,
        grant_type="authorization_code",
        code=itero_code(sandbox),
        redirect_uri=REDIRECT_URI,
        client_secret="nope",
    )
    assert wrong_secret.status_code == 400


def test_refresh_rotates_and_revoke_logs_out(
    sandbox: Sandbox, itero_tokens: dict[str, Any]
) -> None:
    old_refresh = itero_tokens["refresh_token"]
    fresh = itero_exchange(sandbox, grant_type="refresh_token", refresh_token=old_refresh)
    assert fresh.status_code == 200
    new = fresh.json()
    assert (
        new["refresh_token"] != old_refresh and new["access_token"] != itero_tokens["access_token"]
    )
    reused = itero_exchange(sandbox, grant_type="refresh_token", refresh_token=old_refresh)
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert requests.get(f"{sandbox.url}/api/v2/discovery", headers=headers, timeout=5).ok
    revoked = requests.post(
        f"{sandbox.url}/oauth/revoke", data={"token": new["access_token"]}, timeout=5
    )
    assert revoked.status_code == 200
    after = requests.get(f"{sandbox.url}/api/v2/discovery", headers=headers, timeout=5)
    assert after.status_code == 401


def test_access_tokens_expire(sandbox: Sandbox) -> None:
    sandbox.itero.token_ttl = 0.2
    tokens = itero_exchange(
        sandbox,
        grant_type="authorization_code",
        code=itero_code(sandbox),
        redirect_uri=REDIRECT_URI,
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(f"{sandbox.url}{V1}/accounts", headers=headers, timeout=5).ok
    time.sleep(0.25)
    assert (
        requests.get(f"{sandbox.url}{V1}/accounts", headers=headers, timeout=5).status_code == 401
    )


def test_data_calls_need_a_token(sandbox: Sandbox) -> None:
    rx_id = sandbox.itero.create_scan(notify=False)
    for path in (
        "/api/v2/discovery",
        f"{V1}/accounts",
        f"{V1}/orders/lab",
        f"{V1}/orders/{rx_id}",
        f"{V1}/orders/{rx_id}/download/ide",
    ):
        assert requests.get(f"{sandbox.url}{path}", timeout=5).status_code == 401, path


# --- Discovery, accounts, pairing --------------------------------------------------------------


def test_discovery_and_overrides(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    answer = requests.get(f"{sandbox.url}/api/v2/discovery", headers=itero_auth, timeout=5).json()
    assert answer["region"] == "us"
    found = answer["endpoints"]
    assert found == {
        "accounts": f"{sandbox.url}{V1}/accounts",
        "pair": f"{sandbox.url}{V1}/pair",
        "unpair": f"{sandbox.url}{V1}/unpair",
        "orders": f"{sandbox.url}{V1}/orders/lab",
        "order": f"{sandbox.url}{V1}/orders/{{rxId}}",
        "download": f"{sandbox.url}{V1}/orders/{{rxId}}/download/{{assetType}}",
        "return_scan": f"{sandbox.url}{V1}/orders/{{rxId}}/return",
    }
    sandbox.itero.discovery_overrides["orders"] = "https://evil.example/orders"
    assert endpoints(sandbox, itero_auth)["orders"] == "https://evil.example/orders"


def test_accounts_pair_and_unpair(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    accounts = requests.get(f"{sandbox.url}{V1}/accounts", headers=itero_auth, timeout=5).json()
    assert accounts == {
        "accounts": [{"accountNumber": "LAB-1001", "name": "Sandbox Lab", "type": "lab"}]
    }
    first = pair(sandbox, itero_auth, "https://host.example/n/1")
    assert set(first) == {"access_token", "refresh_token", "expires_in", "token_type"}
    second = pair(sandbox, itero_auth, "https://host.example/n/2")
    assert second == first
    assert sandbox.itero.paired == {"LAB-1001": "https://host.example/n/2"}
    paired_headers = {"Authorization": f"Bearer {first['access_token']}"}
    assert requests.get(f"{sandbox.url}{V1}/accounts", headers=paired_headers, timeout=5).ok
    unknown = requests.post(
        f"{sandbox.url}{V1}/pair", json={"accountNumber": "LAB-9"}, headers=itero_auth, timeout=5
    )
    assert unknown.status_code == 404
    unpaired = requests.post(
        f"{sandbox.url}{V1}/unpair",
        json={"accountNumber": "LAB-1001"},
        headers=itero_auth,
        timeout=5,
    )
    assert unpaired.status_code == 200
    assert sandbox.itero.paired == {}
    assert pair(sandbox, itero_auth, None) != first  # a new pairing, a new token set


# --- notifications and orders ------------------------------------------------------------------


def test_notifications_on_create_and_update(
    sandbox: Sandbox, itero_auth: dict[str, str], receiver: CallbackReceiver
) -> None:
    pair(sandbox, itero_auth, f"{receiver.url}/align/itero-notifications/secret")
    rx_id = sandbox.itero.create_scan(chart_number="MRN-42")
    first = receiver.wait(1)[0]
    assert first.path == "/align/itero-notifications/secret"
    assert first.json() == {"rxId": rx_id, "accountNumber": "LAB-1001"}
    sandbox.itero.update_scan(rx_id)
    assert receiver.wait(2)[1].json() == first.json()
    sandbox.itero.create_scan(notify=False)
    assert sandbox.wait_idle(2)
    assert len(receiver.deliveries) == 2
    assert [r.status for r in sandbox.calls("notify")] == [200, 200]


def test_no_notification_when_unpaired(
    sandbox: Sandbox, itero_auth: dict[str, str], receiver: CallbackReceiver
) -> None:
    pair(sandbox, itero_auth, receiver.url)
    requests.post(
        f"{sandbox.url}{V1}/unpair",
        json={"accountNumber": "LAB-1001"},
        headers=itero_auth,
        timeout=5,
    )
    sandbox.itero.create_scan()
    assert sandbox.wait_idle(2)
    assert receiver.deliveries == [] and sandbox.count("notify") == 0


def test_orders_listing_and_download_transition(
    sandbox: Sandbox, itero_auth: dict[str, str]
) -> None:
    rx_id = sandbox.itero.create_scan(chart_number="MRN-7", first_name="Ann", last_name="Lee")
    listing = requests.get(f"{sandbox.url}{V1}/orders/lab", headers=itero_auth, timeout=5)
    assert listing.json() == {"orders": []}  # nothing is paired yet
    pair(sandbox, itero_auth, None)
    orders = requests.get(f"{sandbox.url}{V1}/orders/lab", headers=itero_auth, timeout=5).json()
    assert [o["rxId"] for o in orders["orders"]] == [rx_id]
    order = orders["orders"][0]
    assert set(order) >= {
        "rxId",
        "orderId",
        "accountNumber",
        "status",
        "caseType",
        "dueDate",
        "receivedAt",
        "doctor",
        "patient",
        "version",
    }
    assert order["status"] == "Ready For Download" and order["version"] == 1
    assert order["patient"] == {"firstName": "Ann", "lastName": "Lee", "chartNumber": "MRN-7"}
    assert order["doctor"]["name"]

    assert download(sandbox, itero_auth, rx_id, "thumbnails").status_code == 200
    assert sandbox.itero.orders[rx_id]["status"] == "Ready For Download"
    assert download(sandbox, itero_auth, rx_id).status_code == 200
    by_id = requests.get(f"{sandbox.url}{V1}/orders/{rx_id}", headers=itero_auth, timeout=5).json()
    assert by_id["status"] == "Downloaded"
    listing = requests.get(f"{sandbox.url}{V1}/orders/lab", headers=itero_auth, timeout=5)
    assert listing.json() == {"orders": []}

    sandbox.itero.update_scan(rx_id, notify=False)
    again = requests.get(f"{sandbox.url}{V1}/orders/lab", headers=itero_auth, timeout=5).json()
    assert [(o["rxId"], o["orderId"], o["version"]) for o in again["orders"]] == [
        (rx_id, order["orderId"], 2)
    ]
    missing = requests.get(f"{sandbox.url}{V1}/orders/nope", headers=itero_auth, timeout=5)
    assert missing.status_code == 404


def test_return_scan(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False)
    answer = requests.post(
        f"{sandbox.url}{V1}/orders/{rx_id}/return",
        json={"reason": "margin unclear"},
        headers=itero_auth,
        timeout=5,
    )
    assert answer.status_code == 200
    assert sandbox.itero.orders[rx_id]["status"] == "Returned"
    unknown = requests.post(
        f"{sandbox.url}{V1}/orders/nope/return", json={"reason": "x"}, headers=itero_auth, timeout=5
    )
    assert unknown.status_code == 404


# --- downloads ---------------------------------------------------------------------------------


def stl_triangles(data: bytes) -> int:
    (count,) = struct.unpack("<I", data[80:84])
    assert len(data) == 84 + 50 * count
    assert not data.startswith(b"solid")
    return int(count)


def test_ide_zip_is_complete_and_sized(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False)
    answer = download(sandbox, itero_auth, rx_id)
    assert answer.headers["Content-Type"] == "application/zip"
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    names = set(archive.namelist())
    expected = {"upper.stl", "lower.stl", "scan_v50.xml", "rx.html", "rx.pdf"}
    expected |= {f"thumbnails/{n}.jpg" for n in range(1, 7)}
    assert names == {f"{rx_id}/{name}" for name in expected}
    assert stl_triangles(archive.read(f"{rx_id}/upper.stl")) >= 4
    assert archive.read(f"{rx_id}/rx.pdf").startswith(b"%PDF-")


def test_restorative_scan_has_no_thumbnails(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False, case_type="Restorative", stl_count=1)
    archive = zipfile.ZipFile(io.BytesIO(download(sandbox, itero_auth, rx_id).content))
    assert sorted(archive.namelist()) == sorted(
        f"{rx_id}/{name}" for name in ("upper.stl", "scan_v50.xml", "rx.html", "rx.pdf")
    )


def test_thumbnails_and_screenshots(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False)
    thumbnails = zipfile.ZipFile(
        io.BytesIO(download(sandbox, itero_auth, rx_id, "thumbnails").content)
    )
    assert sorted(thumbnails.namelist()) == [f"{n}.jpg" for n in range(1, 7)]
    assert all(thumbnails.read(name).startswith(b"\xff\xd8") for name in thumbnails.namelist())
    screenshots = download(sandbox, itero_auth, rx_id, "screenshots")
    assert screenshots.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(screenshots.content)).namelist() == []
    assert download(sandbox, itero_auth, rx_id, "movie").status_code == 400


def test_first_downloads_are_not_ready(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False, not_ready_downloads=2)
    for _ in range(2):
        answer = download(sandbox, itero_auth, rx_id)
        assert answer.status_code == 404
        assert answer.json() == {"errors": ["File Not Found"]}
    assert sandbox.itero.orders[rx_id]["status"] == "Ready For Download"
    assert download(sandbox, itero_auth, rx_id).status_code == 200
    assert sandbox.itero.orders[rx_id]["status"] == "Downloaded"


def test_large_download_streams_with_exact_length(
    sandbox: Sandbox, itero_auth: dict[str, str]
) -> None:
    size = 24 * 1024 * 1024
    rx_id = sandbox.itero.create_scan(notify=False, size=size)
    with download(sandbox, itero_auth, rx_id, stream=True) as answer:
        length = int(answer.headers["Content-Length"])
        received = io.BytesIO()
        for chunk in answer.iter_content(256 * 1024):
            received.write(chunk)
    assert received.tell() == length
    assert abs(length - size) < size * 0.01
    archive = zipfile.ZipFile(received)
    upper = archive.read(f"{rx_id}/upper.stl")
    assert stl_triangles(upper) > 100_000


def test_update_scan_changes_the_files(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False)
    first = download(sandbox, itero_auth, rx_id).content
    assert download(sandbox, itero_auth, rx_id).content == first  # cached per version
    sandbox.itero.update_scan(rx_id, notify=False)
    second = zipfile.ZipFile(io.BytesIO(download(sandbox, itero_auth, rx_id).content))
    assert b"<ScanVersion>2</ScanVersion>" in second.read(f"{rx_id}/scan_v50.xml")


def test_partial_download_drop(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    rx_id = sandbox.itero.create_scan(notify=False, size=2 * 1024 * 1024)
    sandbox.inject_fault("download", drop="partial")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        download(sandbox, itero_auth, rx_id)
    whole = download(sandbox, itero_auth, rx_id)
    assert int(whole.headers["Content-Length"]) == len(whole.content)
