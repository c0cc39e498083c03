"""Control endpoints under /__sandbox__/: requests, faults, reset, scans, callbacks, page."""

from __future__ import annotations

from collections.abc import Callable

import requests
from standardwebhooks import Webhook

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import patient_body

Auth = Callable[..., dict[str, str]]
CONTROL = "/__sandbox__"


def test_requests_listing(sandbox: Sandbox, auth: Auth) -> None:
    requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=auth("k-1"), timeout=5)
    listing = requests.get(f"{sandbox.url}{CONTROL}/requests", timeout=5).json()
    assert [r["call"] for r in listing] == ["token", "create_patient"]
    created = listing[1]
    assert created["idempotency_key"] == "k-1"
    assert created["json"]["caseId"] == "CASE-1"
    assert '"caseId"' in created["body"]
    assert created["status"] == 200
    only = requests.get(f"{sandbox.url}{CONTROL}/requests", params={"call": "token"}, timeout=5)
    assert len(only.json()) == 1
    assert sandbox.count("control") == 0  # control calls are not recorded


def test_faults_over_http(sandbox: Sandbox, auth: Auth) -> None:
    added = requests.post(
        f"{sandbox.url}{CONTROL}/faults",
        json={"call": "find_orders", "status": 503, "retry_after": 2, "times": None},
        timeout=5,
    )
    assert added.status_code == 200
    assert added.json()["fault"]["status"] == 503
    url = f"{sandbox.url}/orders?caseId=C"
    failed = requests.get(url, headers=auth(), timeout=5)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    listed = requests.get(f"{sandbox.url}{CONTROL}/faults", timeout=5).json()
    assert [f["call"] for f in listed] == ["find_orders"]
    assert requests.delete(f"{sandbox.url}{CONTROL}/faults", timeout=5).status_code == 200
    assert requests.get(url, headers=auth(), timeout=5).status_code == 200
    bad = requests.post(
        f"{sandbox.url}{CONTROL}/faults", json={"call": "nope", "status": 500}, timeout=5
    )
    assert bad.status_code == 400
    unknown_field = requests.post(
        f"{sandbox.url}{CONTROL}/faults", json={"call": "token", "colour": "red"}, timeout=5
    )
    assert unknown_field.status_code == 400


def test_reset_over_http(sandbox: Sandbox, auth: Auth) -> None:
    requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=5)
    sandbox.inject_fault("token", status=500)
    assert requests.post(f"{sandbox.url}{CONTROL}/reset", timeout=5).status_code == 200
    assert sandbox.patients == [] and sandbox.requests == [] and sandbox.faults == []


def test_scans_over_http(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    sandbox.itero.paired["LAB-1001"] = receiver.url
    created = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans",
        json={"chart_number": "MRN-9", "not_ready_downloads": 1},
        timeout=5,
    )
    assert created.status_code == 200
    rx_id = created.json()["rxId"]
    assert sandbox.itero.orders[rx_id]["patient"]["chartNumber"] == "MRN-9"
    assert sandbox.itero.scans[rx_id].not_ready_downloads == 1
    updated = requests.post(f"{sandbox.url}{CONTROL}/itero/scans/{rx_id}/update", timeout=5)
    assert updated.json() == {"rxId": rx_id, "version": 2}
    assert len(receiver.wait(2)) == 2
    missing = requests.post(f"{sandbox.url}{CONTROL}/itero/scans/nope/update", timeout=5)
    assert missing.status_code == 404
    bad = requests.post(f"{sandbox.url}{CONTROL}/itero/scans", json={"colour": "red"}, timeout=5)
    assert bad.status_code == 400


def test_page_and_its_form(sandbox: Sandbox) -> None:
    page = requests.get(f"{sandbox.url}{CONTROL}/", timeout=5)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "Create a new scan" in page.text
    posted = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans",
        data={
            "chart_number": "MRN-<b>",
            "first_name": "Al",
            "last_name": "Bo",
            "not_ready_downloads": "0",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert posted.status_code == 303
    assert posted.headers["Location"] == f"{CONTROL}/"
    page = requests.get(f"{sandbox.url}{CONTROL}/", timeout=5).text
    assert "MRN-&lt;b&gt;" in page and "MRN-<b>" not in page
    state = requests.get(f"{sandbox.url}{CONTROL}/state", timeout=5).json()
    assert len(state["itero"]["orders"]) == 1


def test_callback_over_http(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    sandbox.callback_url = receiver.url
    sent = requests.post(
        f"{sandbox.url}{CONTROL}/callbacks",
        json={
            "type": "case.status_changed",
            "data": {"caseId": "C-1", "status": "x", "changedAt": "2024-01-01T00:00:00Z"},
        },
        timeout=5,
    )
    assert sent.json() == {"status": 200}
    delivery = receiver.wait(1)[0]
    event = Webhook(sandbox.callback_secret).verify(delivery.body, delivery.headers)
    assert event["data"]["caseId"] == "C-1"
    bad = requests.post(f"{sandbox.url}{CONTROL}/callbacks", json={"type": 3}, timeout=5)
    assert bad.status_code == 400


def test_expire_tokens_over_http(sandbox: Sandbox, auth: Auth) -> None:
    url = f"{sandbox.url}/patients?caseId=C"
    assert requests.get(url, headers=auth(), timeout=5).ok
    requests.post(f"{sandbox.url}{CONTROL}/expire-tokens", timeout=5)
    assert requests.get(url, headers=auth(), timeout=5).status_code == 401
