"""Fault injection: error statuses, delays, dropped connections before and after acting."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest
import requests

from align_integration.testing import CallbackReceiver
from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import patient_body

Auth = Callable[..., dict[str, str]]


def test_status_fault_with_retry_after_does_not_act(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("create_patient", status=503, retry_after=7)
    headers = auth("same-key")
    failed = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5
    )
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "7"
    assert failed.json()["errors"]
    assert sandbox.patients == []
    # The fault is used up, and nothing was stored under the key: the retry acts.
    retried = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5
    )
    assert retried.status_code == 200
    assert len(sandbox.patients) == 1
    assert sandbox.count("create_patient") == 2


def test_status_fault_custom_body_and_times(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("find_patients", status=429, body={"errors": ["slow down"]}, times=2)
    url = f"{sandbox.url}/patients?caseId=C"
    answers = [requests.get(url, headers=auth(), timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json() == {"errors": ["slow down"]}
    assert "Retry-After" not in answers[0].headers


def test_fault_forever_until_cleared(sandbox: Sandbox) -> None:
    sandbox.inject_fault("token", status=500, times=None)
    data = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    for _ in range(3):
        assert requests.post(f"{sandbox.url}/auth/token", data=data, timeout=5).status_code == 500
    assert len(sandbox.faults) == 1
    sandbox.clear_faults()
    assert requests.post(f"{sandbox.url}/auth/token", data=data, timeout=5).status_code == 200


def test_delay_is_a_slow_success(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("create_patient", delay=0.3)
    started = time.monotonic()
    answer = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.3
    sandbox.inject_fault("create_patient", delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=0.2)


def test_drop_before_does_not_act(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("create_patient", drop="before")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=5)
    assert sandbox.patients == []
    assert sandbox.count("create_patient") == 1
    assert "dropped before" in (sandbox.calls("create_patient")[0].error or "")


def test_drop_after_acts_and_replays_to_the_retry(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("create_patient", drop="after")
    headers = auth("ambiguous")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5)
    assert len(sandbox.patients) == 1
    retried = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=headers, timeout=5
    )
    assert retried.status_code == 200
    assert retried.json() == {"patientId": sandbox.patients[0]["patientId"]}
    assert len(sandbox.patients) == 1


def test_faults_apply_to_their_call_only(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("create_order", status=503)
    answer = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=5
    )
    assert answer.status_code == 200
    assert len(sandbox.faults) == 1


def test_invalid_faults_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.inject_fault("no_such_call", status=500)
    with pytest.raises(ValueError):
        sandbox.inject_fault("token", drop="sideways")
    with pytest.raises(ValueError):
        sandbox.inject_fault("token", status=500, drop="before")


def test_fault_on_outgoing_callback_skips_delivery(
    sandbox: Sandbox, receiver: CallbackReceiver
) -> None:
    sandbox.inject_fault("callback", drop="before")
    assert sandbox.send_callback("case.status_changed", {"caseId": "C"}, url=receiver.url) == 0
    assert receiver.deliveries == []
    assert sandbox.calls("callback")[0].error == "not sent: injected fault"
    assert sandbox.send_callback("case.status_changed", {"caseId": "C"}, url=receiver.url) == 200


def test_handler_exception_is_a_500_and_server_survives(
    sandbox: Sandbox, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = next(r for r in sandbox.routes if r.call == "find_patients")

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    broken_route = dataclasses.replace(route, handler=explode)
    routes = [broken_route if r is route else r for r in sandbox.routes]
    monkeypatch.setattr(sandbox, "routes", routes)
    broken = requests.get(f"{sandbox.url}/patients?caseId=C", headers=auth(), timeout=5)
    assert broken.status_code == 500
    assert broken.json() == {"errors": ["internal sandbox error"]}
    monkeypatch.undo()
    assert requests.get(f"{sandbox.url}/patients?caseId=C", headers=auth(), timeout=5).ok
