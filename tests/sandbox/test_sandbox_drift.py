"""Drift control: Align patients and orders made or removed behind the host's back, by method
and over HTTP, show up in the find calls and never as recorded requests or callbacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from align_integration.sandbox import Sandbox

Auth = Callable[..., dict[str, str]]
ALIGN = "/__sandbox__/align"


def found(sandbox: Sandbox, auth: Auth, what: str, case_id: str) -> list[dict[str, str]]:
    answer = requests.get(
        f"{sandbox.url}/{what}", params={"caseId": case_id}, headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    return list(answer.json()["results"])


def test_methods_make_two_candidates_and_remove_them(sandbox: Sandbox, auth: Auth) -> None:
    first = sandbox.align.add_patient("CASE-9")
    second = sandbox.align.add_patient("CASE-9", "P-CHOSEN")
    order = sandbox.align.add_order("CASE-9", second)
    assert second == "P-CHOSEN" and first != second
    assert [p["patientId"] for p in found(sandbox, auth, "patients", "CASE-9")] == [first, second]
    assert found(sandbox, auth, "orders", "CASE-9") == [
        {"orderId": order, "caseId": "CASE-9", "patientId": second, "orderType": "IAS"}
    ]
    with pytest.raises(ValueError):
        sandbox.align.add_patient("CASE-9", "P-CHOSEN")
    assert sandbox.align.remove_order(order) and not sandbox.align.remove_order(order)
    assert sandbox.align.remove_patient(first)
    assert [p["patientId"] for p in found(sandbox, auth, "patients", "CASE-9")] == [second]
    assert found(sandbox, auth, "orders", "CASE-9") == []
    assert {r.call for r in sandbox.requests} == {"token", "find_patients", "find_orders"}


def test_over_http(sandbox: Sandbox, auth: Auth) -> None:
    made = requests.post(f"{sandbox.url}{ALIGN}/patients", json={"caseId": "C-1"}, timeout=5)
    assert made.status_code == 200
    patient = made.json()["patientId"]
    order = requests.post(
        f"{sandbox.url}{ALIGN}/orders",
        json={"caseId": "C-1", "patientId": patient, "orderId": "O-X"},
        timeout=5,
    )
    assert order.json() == {"orderId": "O-X"}
    assert [o["orderId"] for o in found(sandbox, auth, "orders", "C-1")] == ["O-X"]
    bad = requests.post(f"{sandbox.url}{ALIGN}/orders", json={"caseId": "C-1"}, timeout=5)
    assert bad.status_code == 400
    again = requests.post(
        f"{sandbox.url}{ALIGN}/patients", json={"caseId": "C-2", "patientId": patient}, timeout=5
    )
    assert again.status_code == 400
    assert requests.delete(f"{sandbox.url}{ALIGN}/orders/O-X", timeout=5).status_code == 200
    assert requests.delete(f"{sandbox.url}{ALIGN}/orders/O-X", timeout=5).status_code == 404
    gone = requests.delete(f"{sandbox.url}{ALIGN}/patients/{patient}", timeout=5)
    assert gone.status_code == 200
    assert sandbox.patients == [] and sandbox.orders == []
    assert sandbox.count("control") == 0
