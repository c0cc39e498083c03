"""The iTero lab's richer orders: revisions, statuses, assets, XML version, several accounts."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
import requests

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import LAB_STATUSES, Sandbox

V1 = "/api/third-party/v1"
CONTROL = "/__sandbox__"


def get(sandbox: Sandbox, headers: dict[str, str], path: str) -> Any:
    answer = requests.get(f"{sandbox.url}{V1}{path}", headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def pair(
    sandbox: Sandbox, headers: dict[str, str], account: str, url: str | None
) -> dict[str, str]:
    answer = requests.post(
        f"{sandbox.url}{V1}/pair",
        json={"accountNumber": account, "callbackUrl": url},
        headers=headers,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def download(sandbox: Sandbox, headers: dict[str, str], rx_id: str, asset: str) -> zipfile.ZipFile:
    answer = requests.get(
        f"{sandbox.url}{V1}/orders/{rx_id}/download/{asset}", headers=headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return zipfile.ZipFile(io.BytesIO(answer.content))


def test_new_revision_of_the_same_rx(
    sandbox: Sandbox, itero_auth: dict[str, str], receiver: CallbackReceiver
) -> None:
    pair(sandbox, itero_auth, "LAB-1001", receiver.url)
    rx_id = sandbox.itero.create_scan(revisions=2)
    order = get(sandbox, itero_auth, f"/orders/{rx_id}")
    assert order["version"] == 2
    assert [(r["version"], r["reason"]) for r in order["revisions"]] == [(1, "scan"), (2, "rescan")]
    assert sandbox.itero.update_scan(rx_id, reason="modeling", stl_count=3) == 3
    newer = get(sandbox, itero_auth, f"/orders/{rx_id}")
    assert (newer["rxId"], newer["orderId"], newer["version"]) == (rx_id, order["orderId"], 3)
    assert newer["revisions"][-1]["reason"] == "modeling"
    archive = download(sandbox, itero_auth, rx_id, "ide")
    assert f"{rx_id}/model_3.stl" in archive.namelist()
    assert len(receiver.wait(2)) == 2  # one notification per file change


def test_lab_statuses(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    pair(sandbox, itero_auth, "LAB-1001", None)
    assert "Lab Review" in LAB_STATUSES and "iTero Modeling" in LAB_STATUSES
    rx_id = sandbox.itero.create_scan(notify=False)
    in_review = sandbox.itero.create_scan(notify=False, status="Lab Review")
    assert [o["rxId"] for o in get(sandbox, itero_auth, "/orders/lab")["orders"]] == [rx_id]
    sandbox.itero.set_status(rx_id, "iTero Modeling")
    assert get(sandbox, itero_auth, f"/orders/{rx_id}")["status"] == "iTero Modeling"
    assert get(sandbox, itero_auth, f"/orders/{in_review}")["status"] == "Lab Review"
    assert get(sandbox, itero_auth, "/orders/lab")["orders"] == []
    sandbox.itero.update_scan(rx_id, notify=False, reason="modeling")  # back from modeling
    assert get(sandbox, itero_auth, f"/orders/{rx_id}")["status"] == "Ready For Download"
    with pytest.raises(ValueError):
        sandbox.itero.set_status(rx_id, "Lost")
    with pytest.raises(KeyError):
        sandbox.itero.set_status("nope", "Lab Review")


def test_assets_listed_and_downloadable(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    restorative = sandbox.itero.create_scan(notify=False, case_type="Restorative", screenshots=2)
    order = get(sandbox, itero_auth, f"/orders/{restorative}")
    assert order["assets"] == [
        {"assetType": "ide"},
        {"assetType": "thumbnails", "count": 6, "inIde": False},
        {"assetType": "screenshots", "count": 2},
    ]
    ide = download(sandbox, itero_auth, restorative, "ide")
    assert not any("thumbnails" in name for name in ide.namelist())
    thumbnails = download(sandbox, itero_auth, restorative, "thumbnails")
    assert len(thumbnails.namelist()) == 6
    captures = download(sandbox, itero_auth, restorative, "screenshots")
    assert captures.namelist() == ["screenshot_1.jpg", "screenshot_2.jpg"]
    assert captures.read("screenshot_1.jpg").startswith(b"\xff\xd8")
    ortho = sandbox.itero.create_scan(notify=False)
    assets = get(sandbox, itero_auth, f"/orders/{ortho}")["assets"]
    assert [a["assetType"] for a in assets] == ["ide", "thumbnails"]  # no captures taken
    assert assets[1]["inIde"] is True


def test_xml_version(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    default = sandbox.itero.create_scan(notify=False)
    assert get(sandbox, itero_auth, f"/orders/{default}")["xmlVersion"] == "v50"
    rx_id = sandbox.itero.create_scan(notify=False, xml_version="v49")
    assert get(sandbox, itero_auth, f"/orders/{rx_id}")["xmlVersion"] == "v49"
    xml = download(sandbox, itero_auth, rx_id, "ide").read(f"{rx_id}/scan_v49.xml")
    assert b'schemaVersion="49"' in xml
    sandbox.itero.update_scan(rx_id, notify=False, xml_version="v50")
    names = download(sandbox, itero_auth, rx_id, "ide").namelist()
    assert f"{rx_id}/scan_v50.xml" in names and f"{rx_id}/scan_v49.xml" not in names


def test_several_lab_accounts_paired_at_once(
    sandbox: Sandbox, itero_auth: dict[str, str], receiver: CallbackReceiver
) -> None:
    sandbox.itero.add_account("LAB-2002", "Second Lab")
    with pytest.raises(ValueError):
        sandbox.itero.add_account("LAB-2002")
    accounts = get(sandbox, itero_auth, "/accounts")["accounts"]
    assert [a["accountNumber"] for a in accounts] == ["LAB-1001", "LAB-2002"]
    first = pair(sandbox, itero_auth, "LAB-1001", f"{receiver.url}/one")
    second = pair(sandbox, itero_auth, "LAB-2002", f"{receiver.url}/two")
    assert first != second
    assert set(sandbox.itero.paired) == {"LAB-1001", "LAB-2002"}
    one = sandbox.itero.create_scan(account_number="LAB-1001")
    two = sandbox.itero.create_scan(account_number="LAB-2002")
    paths = sorted(d.path for d in receiver.wait(2))
    assert paths == ["/one", "/two"]
    # A pairing's token sees its own account's orders; the sign-in token sees every pairing's.
    assert [o["rxId"] for o in get(sandbox, first, "/orders/lab")["orders"]] == [one]
    assert [o["rxId"] for o in get(sandbox, second, "/orders/lab")["orders"]] == [two]
    assert len(get(sandbox, itero_auth, "/orders/lab")["orders"]) == 2
    requests.post(
        f"{sandbox.url}{V1}/unpair", json={"accountNumber": "LAB-1001"}, headers=first, timeout=5
    )
    assert get(sandbox, first, "/orders/lab")["orders"] == []
    assert [o["rxId"] for o in get(sandbox, second, "/orders/lab")["orders"]] == [two]


def test_lab_controls_over_http(sandbox: Sandbox, itero_auth: dict[str, str]) -> None:
    added = requests.post(
        f"{sandbox.url}{CONTROL}/itero/accounts",
        json={"account_number": "LAB-3", "name": "Third"},
        timeout=5,
    )
    assert added.json() == {"accountNumber": "LAB-3", "name": "Third", "type": "lab"}
    created = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans",
        json={"account_number": "LAB-3", "screenshots": 1, "xml_version": "v48", "revisions": 2},
        timeout=5,
    )
    rx_id = created.json()["rxId"]
    status = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans/{rx_id}/status",
        json={"status": "Lab Review"},
        timeout=5,
    )
    assert status.json() == {"rxId": rx_id, "status": "Lab Review"}
    bad = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans/{rx_id}/status", json={"status": "Lost"}, timeout=5
    )
    assert bad.status_code == 400
    updated = requests.post(
        f"{sandbox.url}{CONTROL}/itero/scans/{rx_id}/update",
        json={"notify": False, "reason": "modeling", "screenshots": 0},
        timeout=5,
    )
    assert updated.json() == {"rxId": rx_id, "version": 3}
    order = get(sandbox, itero_auth, f"/orders/{rx_id}")
    assert order["accountNumber"] == "LAB-3" and order["xmlVersion"] == "v48"
    assert [a["assetType"] for a in order["assets"]] == ["ide", "thumbnails"]
    page = requests.get(f"{sandbox.url}{CONTROL}/", timeout=5).text
    assert "Set status" in page and "iTero Modeling" in page
