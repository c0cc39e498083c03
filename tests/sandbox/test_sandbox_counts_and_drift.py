"""Counts per case and per Idempotency-Key, and drift staged at Align for a reconcile."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import order_body, patient_body

Auth = Callable[..., dict[str, str]]
CONTROL = "/__sandbox__"


def create_patient(sandbox: Sandbox, auth: Auth, case_id: str, key: str) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/patients", json=patient_body(case_id), headers=auth(key), timeout=5
    )


def test_counts_per_case_key_and_acted(sandbox: Sandbox, auth: Auth) -> None:
    create_patient(sandbox, auth, "C-1", "k-1")
    create_patient(sandbox, auth, "C-1", "k-1")  # the retry: a replay, no second patient
    create_patient(sandbox, auth, "C-2", "k-2")
    create_patient(sandbox, auth, "C-2", "k-3")  # a second logical attempt for C-2
    requests.post(
        f"{sandbox.url}/patients",
        json=patient_body("C-3", gender="X"),
        headers=auth("k-4"),
        timeout=5,
    )
    assert sandbox.counts("create_patient") == {"C-1": 2, "C-2": 2, "C-3": 1}
    assert sandbox.counts("create_patient", acted=True) == {"C-1": 1, "C-2": 2}
    assert sandbox.counts("create_patient", "key") == {"k-1": 2, "k-2": 1, "k-3": 1, "k-4": 1}
    assert sandbox.keys_by_case("create_patient") == {
        "C-1": ["k-1"],
        "C-2": ["k-2", "k-3"],
        "C-3": ["k-4"],
    }
    assert sandbox.count("create_patient", case_id="C-1") == 2
    assert sandbox.count("create_patient", idempotency_key="k-1", acted=True) == 1
    [replay] = [r for r in sandbox.calls("create_patient") if r.replayed]
    assert replay.idempotency_key == "k-1" and not replay.acted
    with pytest.raises(ValueError):
        sandbox.counts("create_patient", "patient")  # type: ignore[arg-type]


def test_case_id_is_read_from_path_query_form_and_callbacks(
    sandbox: Sandbox, auth: Auth, make_order: Callable[..., str], receiver: CallbackReceiver
) -> None:
    make_order("C-9")
    requests.get(f"{sandbox.url}/orders", params={"caseId": "C-9"}, headers=auth(), timeout=5)
    requests.put(
        f"{sandbox.url}/orders/C-9/modify",
        data={"caseId": "C-9", "mrn": "M", "comments": "x"},
        headers=auth(),
        timeout=5,
    )
    sandbox.send_callback("case.status_changed", {"caseId": "C-9"}, url=receiver.url)
    for call in ("create_patient", "create_order", "find_orders", "clincheck_revise", "callback"):
        assert sandbox.counts(call) == {"C-9": 1}, call


def test_counts_over_http(sandbox: Sandbox, auth: Auth) -> None:
    create_patient(sandbox, auth, "C-1", "k-1")
    create_patient(sandbox, auth, "C-1", "k-1")
    summary = requests.get(
        f"{sandbox.url}{CONTROL}/counts", params={"call": "create_patient"}, timeout=5
    ).json()
    assert summary == {
        "call": "create_patient",
        "total": 2,
        "acted": 1,
        "byCase": {"C-1": 2},
        "actedByCase": {"C-1": 1},
        "byKey": {"k-1": 2},
        "byRx": {},
        "keysByCase": {"C-1": ["k-1"]},
    }
    assert requests.get(f"{sandbox.url}{CONTROL}/counts", timeout=5).status_code == 400


def find(sandbox: Sandbox, auth: Auth, what: str, case_id: str) -> list[dict[str, str]]:
    answer = requests.get(
        f"{sandbox.url}/{what}", params={"caseId": case_id}, headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    return list(answer.json()["results"])


def test_seeded_patient_and_order_are_found(sandbox: Sandbox, auth: Auth) -> None:
    order_id = sandbox.seed_order("C-1")  # seeds its patient too
    [patient] = sandbox.patients
    assert find(sandbox, auth, "patients", "C-1") == [
        {"patientId": patient["patientId"], "caseId": "C-1"}
    ]
    assert find(sandbox, auth, "orders", "C-1") == [
        {
            "orderId": order_id,
            "caseId": "C-1",
            "patientId": patient["patientId"],
            "orderType": "IAS",
        }
    ]
    assert sandbox.count("create_order") == 0  # staged, not received


def test_seeding_sends_no_callbacks(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    sandbox.callback_url = receiver.url
    sandbox.seed_order("C-1")
    assert sandbox.wait_idle(2)
    assert receiver.deliveries == []


def test_two_candidate_patients_and_explicit_ids(sandbox: Sandbox, auth: Auth) -> None:
    first = sandbox.seed_patient("C-1", patient_id="P-OLD", mrn="MRN-7")
    second = sandbox.seed_patient("C-1")
    assert first == "P-OLD" and second.startswith("P-")
    assert [p["patientId"] for p in find(sandbox, auth, "patients", "C-1")] == [first, second]
    order_id = sandbox.seed_order("C-1", patient_id=first, order_id="O-OLD")
    assert sandbox.orders[0]["mrn"] == "MRN-7" and order_id == "O-OLD"
    with pytest.raises(ValueError):
        sandbox.seed_patient("C-2", patient_id="P-OLD")
    # An order the app makes later for the seeded patient is accepted.
    made = requests.post(
        f"{sandbox.url}/orders", json=order_body(first, "C-1"), headers=auth(), timeout=5
    )
    assert made.status_code == 200


def test_deleted_records_are_no_longer_found(
    sandbox: Sandbox, auth: Auth, make_order: Callable[..., str]
) -> None:
    order_id = make_order("C-1")
    patient_id = sandbox.patients[0]["patientId"]
    sandbox.delete_order(order_id)
    assert find(sandbox, auth, "orders", "C-1") == []
    sandbox.delete_patient(patient_id)
    assert find(sandbox, auth, "patients", "C-1") == []
    with pytest.raises(KeyError):
        sandbox.delete_order(order_id)
    with pytest.raises(KeyError):
        sandbox.delete_patient(patient_id)


def test_drift_over_http(sandbox: Sandbox, auth: Auth) -> None:
    seeded = requests.post(
        f"{sandbox.url}{CONTROL}/align/patients", json={"case_id": "C-5", "mrn": "M-5"}, timeout=5
    )
    patient_id = seeded.json()["patientId"]
    ordered = requests.post(
        f"{sandbox.url}{CONTROL}/align/orders",
        json={"case_id": "C-5", "plan_version": "2"},
        timeout=5,
    )
    order_id = ordered.json()["orderId"]
    assert sandbox.orders[0]["patientId"] == patient_id
    assert sandbox.orders[0]["planVersion"] == 2
    assert (
        requests.post(
            f"{sandbox.url}{CONTROL}/align/patients",
            json={"case_id": "C-5", "patient_id": patient_id},
            timeout=5,
        ).status_code
        == 409
    )
    for path in (f"orders/{order_id}", f"patients/{patient_id}"):
        assert requests.delete(f"{sandbox.url}{CONTROL}/align/{path}", timeout=5).status_code == 200
        assert requests.delete(f"{sandbox.url}{CONTROL}/align/{path}", timeout=5).status_code == 404
    assert sandbox.patients == [] and sandbox.orders == []
    missing = requests.post(f"{sandbox.url}{CONTROL}/align/orders", json={"mrn": "x"}, timeout=5)
    assert missing.status_code == 400
