"""The sandbox's Align integration service over HTTP: tokens, calls, validation, idempotency."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import order_body, patient_body

Auth = Callable[..., dict[str, str]]


def test_token_flow(sandbox: Sandbox) -> None:
    answer = requests.post(
        f"{sandbox.url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=5,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"]
    assert sandbox.count("token") == 1


def test_token_wrong_credentials_is_401(sandbox: Sandbox) -> None:
    answer = requests.post(
        f"{sandbox.url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "wrong",
        },
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json() == {"errors": ["invalid client"]}


def test_calls_without_valid_token_are_401(sandbox: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        answer = requests.get(
            f"{sandbox.url}/patients", params={"caseId": "C"}, headers=headers, timeout=5
        )
        assert answer.status_code == 401
        assert answer.json() == {"errors": ["invalid token"]}
    answer = requests.post(f"{sandbox.url}/patients", json=patient_body(), timeout=5)
    assert answer.status_code == 401
    assert sandbox.patients == []


def test_expire_tokens_and_ttl(sandbox: Sandbox, auth: Auth) -> None:
    url = f"{sandbox.url}/patients?caseId=C"
    assert requests.get(url, headers=auth(), timeout=5).status_code == 200
    sandbox.expire_tokens()
    assert requests.get(url, headers=auth(), timeout=5).status_code == 401

    sandbox.token_ttl = 0
    token = requests.post(
        f"{sandbox.url}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=5,
    ).json()["access_token"]
    time.sleep(0.01)
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 401


def test_post_without_idempotency_key_is_400(sandbox: Sandbox, auth: Auth) -> None:
    answer = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=auth(idempotent=False), timeout=5
    )
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["Idempotency-Key header required"]}
    assert sandbox.patients == []


def test_create_and_find_patient(sandbox: Sandbox, auth: Auth) -> None:
    answer = requests.post(
        f"{sandbox.url}/patients", json=patient_body("C-7"), headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    patient_id = answer.json()["patientId"]
    assert patient_id.startswith("P-")
    found = requests.get(
        f"{sandbox.url}/patients", params={"caseId": "C-7"}, headers=auth(), timeout=5
    )
    assert found.json() == {"results": [{"patientId": patient_id, "caseId": "C-7"}]}
    other = requests.get(
        f"{sandbox.url}/patients", params={"caseId": "C-8"}, headers=auth(), timeout=5
    )
    assert other.json() == {"results": []}
    assert sandbox.patients[0]["firstName"] == "Pat"
    recorded = sandbox.calls("create_patient")[0]
    assert recorded.json["caseId"] == "C-7"
    assert recorded.idempotency_key is not None
    assert recorded.headers["Idempotency-Key"] == recorded.idempotency_key


def test_find_without_case_id_is_400(sandbox: Sandbox, auth: Auth) -> None:
    assert requests.get(f"{sandbox.url}/patients", headers=auth(), timeout=5).status_code == 400
    assert requests.get(f"{sandbox.url}/orders", headers=auth(), timeout=5).status_code == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("caseId", ""),
        ("mrn", None),
        ("firstName", "  "),
        ("lastName", 5),
        ("dateOfBirth", "01/04/1990"),
        ("dateOfBirth", "1990-02-30"),
        ("gender", "U"),
        ("email", None),
        ("phone", 123),
    ],
)
def test_create_patient_validation(sandbox: Sandbox, auth: Auth, field: str, value: object) -> None:
    answer = requests.post(
        f"{sandbox.url}/patients", json=patient_body(**{field: value}), headers=auth(), timeout=5
    )
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert len(errors) == 1 and errors[0].startswith(f"{field}:")
    assert sandbox.patients == []


def test_unparseable_body_is_400(sandbox: Sandbox, auth: Auth) -> None:
    answer = requests.post(
        f"{sandbox.url}/patients",
        data=b"{not json",
        headers={**auth(), "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["errors"]


def test_idempotency_replay(sandbox: Sandbox, auth: Auth) -> None:
    headers = auth("key-1")
    first = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5
    )
    second = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.patients) == 1
    assert sandbox.count("create_patient") == 2
    # A different key is a different operation: the sandbox allows a second patient per case.
    requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=auth("key-2"), timeout=5)
    assert len(sandbox.patients) == 2


def test_idempotency_replays_validation_errors_too(sandbox: Sandbox, auth: Auth) -> None:
    bad = patient_body(gender="X")
    first = requests.post(f"{sandbox.url}/patients", json=bad, headers=auth("k"), timeout=5)
    second = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=auth("k"), timeout=5
    )
    assert first.status_code == second.status_code == 422
    assert sandbox.patients == []


def test_create_and_find_order(
    sandbox: Sandbox, auth: Auth, make_patient: Callable[..., str]
) -> None:
    patient_id = make_patient("C-1")
    answer = requests.post(
        f"{sandbox.url}/orders", json=order_body(patient_id, "C-1"), headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    order_id = answer.json()["orderId"]
    assert order_id.startswith("O-")
    found = requests.get(
        f"{sandbox.url}/orders", params={"caseId": "C-1"}, headers=auth(), timeout=5
    )
    assert found.json() == {
        "results": [
            {"orderId": order_id, "caseId": "C-1", "patientId": patient_id, "orderType": "IAS"}
        ]
    }
    assert sandbox.orders[0]["treatmentOption"] == "comprehensive"


def test_create_order_errors(
    sandbox: Sandbox, auth: Auth, make_patient: Callable[..., str]
) -> None:
    patient_id = make_patient("C-1")
    url = f"{sandbox.url}/orders"
    wrong_type = requests.post(
        url, json=order_body(patient_id, "C-1", orderType="OTHER"), headers=auth(), timeout=5
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"] == ['orderType: must be "IAS"']
    unknown = requests.post(url, json=order_body("P-404", "C-1"), headers=auth(), timeout=5)
    assert unknown.status_code == 404
    other_case = requests.post(url, json=order_body(patient_id, "C-2"), headers=auth(), timeout=5)
    assert other_case.status_code == 404
    missing = requests.post(url, json={"caseId": "C-1"}, headers=auth(), timeout=5)
    assert missing.status_code == 422
    assert len(missing.json()["errors"]) == 5
    assert sandbox.orders == []


def test_upload_assets(sandbox: Sandbox, auth: Auth, make_patient: Callable[..., str]) -> None:
    patient_id = make_patient("C-1")
    url = f"{sandbox.url}/assets/upload"
    ok = requests.post(
        url, data={"pId": patient_id, "mrn": "MRN-1", "caseId": "C-1"}, headers=auth(), timeout=5
    )
    assert ok.status_code == 200
    assert isinstance(ok.json()["uploaded"], int)
    assert sandbox.calls("upload_assets")[0].form == {
        "pId": patient_id,
        "mrn": "MRN-1",
        "caseId": "C-1",
    }
    multipart = requests.post(
        url,
        files={"pId": (None, patient_id), "mrn": (None, "M"), "caseId": (None, "C-1")},
        headers=auth(),
        timeout=5,
    )
    assert multipart.status_code == 200
    wrong_case = requests.post(
        url, data={"pId": patient_id, "mrn": "M", "caseId": "C-2"}, headers=auth(), timeout=5
    )
    assert wrong_case.status_code == 404
    missing = requests.post(url, data={"pId": patient_id}, headers=auth(), timeout=5)
    assert missing.status_code == 422
    as_json = requests.post(url, json={"pId": patient_id}, headers=auth(), timeout=5)
    assert as_json.status_code == 400


def test_clincheck_accept_and_revise(
    sandbox: Sandbox, auth: Auth, make_order: Callable[..., str]
) -> None:
    make_order("C-1")
    accept = requests.put(
        f"{sandbox.url}/orders/C-1/accept",
        data={"caseId": "C-1", "mrn": "MRN-1", "vault_id": "v-1", "external_key": "k-1"},
        headers=auth(idempotent=False),
        timeout=5,
    )
    assert accept.status_code == 200
    assert accept.json() == {"status": "accepted"}
    assert sandbox.orders[0]["status"] == "accepted"
    revise = requests.put(
        f"{sandbox.url}/orders/C-1/modify",
        data={"caseId": "C-1", "mrn": "MRN-1", "comments": "close the gap"},
        headers=auth(idempotent=False),
        timeout=5,
    )
    assert revise.status_code == 200
    assert revise.json() == {"status": "revision_requested"}
    assert sandbox.orders[0]["planVersion"] == 2


def test_clincheck_errors(sandbox: Sandbox, auth: Auth, make_order: Callable[..., str]) -> None:
    no_order = requests.put(
        f"{sandbox.url}/orders/C-9/accept",
        data={"caseId": "C-9", "mrn": "M", "vault_id": "v", "external_key": "k"},
        headers=auth(),
        timeout=5,
    )
    assert no_order.status_code == 404
    make_order("C-1")
    missing = requests.put(
        f"{sandbox.url}/orders/C-1/accept",
        data={"caseId": "C-1", "mrn": "M"},
        headers=auth(),
        timeout=5,
    )
    assert missing.status_code == 422
    assert sorted(missing.json()["errors"]) == [
        "external_key: required, a non-empty string",
        "vault_id: required, a non-empty string",
    ]
    no_comment = requests.put(
        f"{sandbox.url}/orders/C-1/modify",
        data={"caseId": "C-1", "mrn": "M", "comments": ""},
        headers=auth(),
        timeout=5,
    )
    assert no_comment.status_code == 422
    mismatch = requests.put(
        f"{sandbox.url}/orders/C-1/modify",
        data={"caseId": "C-2", "mrn": "M", "comments": "x"},
        headers=auth(),
        timeout=5,
    )
    assert mismatch.status_code == 422


def test_put_honours_idempotency_key(
    sandbox: Sandbox, auth: Auth, make_order: Callable[..., str]
) -> None:
    make_order("C-1")
    form = {"caseId": "C-1", "mrn": "M", "comments": "again"}
    for _ in range(2):
        answer = requests.put(
            f"{sandbox.url}/orders/C-1/modify", data=form, headers=auth("rev-1"), timeout=5
        )
        assert answer.status_code == 200
    assert sandbox.orders[0]["planVersion"] == 2


def test_unknown_path_and_wrong_method(sandbox: Sandbox, auth: Auth) -> None:
    unknown = requests.get(f"{sandbox.url}/nowhere", headers=auth(), timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["errors"]
    wrong = requests.delete(f"{sandbox.url}/patients", headers=auth(), timeout=5)
    assert wrong.status_code == 405
    assert sandbox.calls("unknown")[0].path == "/nowhere"
