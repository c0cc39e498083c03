"""Probabilistic faults, per-call latency and the in-flight cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests

from align_integration.testing.sandbox import Sandbox
from tests.sandbox.helpers import patient_body

Auth = Callable[..., dict[str, str]]
CONTROL = "/__sandbox__"


def find(sandbox: Sandbox, auth: Auth) -> requests.Response:
    return requests.get(f"{sandbox.url}/patients?caseId=C", headers=auth(), timeout=5)


def statuses_with_rate(sandbox: Sandbox, auth: Auth, seed: int, calls: int = 40) -> list[int]:
    sandbox.clear_faults()
    sandbox.inject_fault(
        "find_patients", status=429, retry_after=1, times=None, rate=0.25, seed=seed
    )
    return [find(sandbox, auth).status_code for _ in range(calls)]


def test_rate_fault_hits_a_fraction_and_is_repeatable_when_seeded(
    sandbox: Sandbox, auth: Auth
) -> None:
    first = statuses_with_rate(sandbox, auth, seed=7)
    assert set(first) == {200, 429}
    assert 3 <= first.count(429) <= 20  # a quarter of 40, give or take
    assert statuses_with_rate(sandbox, auth, seed=7) == first
    assert statuses_with_rate(sandbox, auth, seed=8) != first
    limited = [r for r in sandbox.calls("find_patients") if r.status == 429]
    assert all(r.error == "injected fault" for r in limited)


def test_rate_fault_answers_retry_after_and_counts_only_hits(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.inject_fault("find_patients", status=429, retry_after=2, times=2, rate=0.5, seed=1)
    answers = [find(sandbox, auth) for _ in range(30)]
    hits = [a for a in answers if a.status_code == 429]
    assert len(hits) == 2  # times counts the hits, not the draws
    assert all(a.headers["Retry-After"] == "2" for a in hits)
    assert sandbox.faults == []


def test_rate_must_be_a_fraction(sandbox: Sandbox) -> None:
    for rate in (0, 1.5, -0.1):
        with pytest.raises(ValueError):
            sandbox.inject_fault("token", status=429, rate=rate)


def test_latency_applies_to_every_request_until_cleared(sandbox: Sandbox, auth: Auth) -> None:
    find(sandbox, auth)  # the token, before the latency
    sandbox.set_latency("find_patients", 0.2)
    for _ in range(2):
        started = time.monotonic()
        assert find(sandbox, auth).status_code == 200
        assert time.monotonic() - started >= 0.2
    sandbox.set_latency("find_patients", None)
    started = time.monotonic()
    find(sandbox, auth)
    assert time.monotonic() - started < 0.2
    with pytest.raises(ValueError):
        sandbox.set_latency("callback", 1)  # outgoing calls have no latency setting


def test_in_flight_cap_answers_429_beyond_it(sandbox: Sandbox, auth: Auth) -> None:
    headers = auth(idempotent=False)  # one key for all five would make four replays
    sandbox.set_latency("find_patients", 0.5)
    sandbox.limit_in_flight(2, retry_after=3)
    answers: list[requests.Response] = []

    def call() -> None:
        answers.append(requests.get(f"{sandbox.url}/patients?caseId=C", headers=headers, timeout=5))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)  # all five arrive while the first two are still being served
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 429, 429, 429]
    refused = [a for a in answers if a.status_code == 429]
    assert all(a.headers["Retry-After"] == "3" for a in refused)
    assert refused[0].json() == {"errors": ["too many requests in flight"]}
    assert sandbox.peak_in_flight == 2
    assert sandbox.count("find_patients") == 5
    assert sandbox.count("find_patients", acted=True) == 2


def test_in_flight_cap_can_be_limited_to_some_calls_and_reset(sandbox: Sandbox, auth: Auth) -> None:
    sandbox.limit_in_flight(1, calls=["create_patient"])
    assert find(sandbox, auth).status_code == 200  # not counted: no cap for this call
    created = requests.post(
        f"{sandbox.url}/patients", json=patient_body(), headers=auth(), timeout=5
    )
    assert created.status_code == 200
    sandbox.reset()
    assert sandbox.pacing_state()["max_in_flight"] is None
    with pytest.raises(ValueError):
        sandbox.limit_in_flight(0)


def test_constructor_cap_survives_reset() -> None:
    with Sandbox(max_in_flight=3) as capped:
        capped.reset()
        assert capped.pacing_state()["max_in_flight"] == 3


def test_pacing_and_rate_faults_over_http(sandbox: Sandbox, auth: Auth) -> None:
    latency = requests.post(
        f"{sandbox.url}{CONTROL}/latency", json={"call": "find_orders", "seconds": 0.1}, timeout=5
    )
    assert latency.json()["latency"] == {"find_orders": 0.1}
    capped = requests.post(
        f"{sandbox.url}{CONTROL}/in-flight",
        json={"max_in_flight": 20, "retry_after": 1, "calls": ["create_order"]},
        timeout=5,
    )
    assert capped.status_code == 200
    state = requests.get(f"{sandbox.url}{CONTROL}/state", timeout=5).json()["pacing"]
    assert state["max_in_flight"] == 20 and state["calls"] == ["create_order"]
    fault = requests.post(
        f"{sandbox.url}{CONTROL}/faults",
        json={"call": "find_orders", "status": 429, "rate": 0.5, "seed": 3, "times": None},
        timeout=5,
    )
    assert fault.json()["fault"]["rate"] == 0.5
    assert "_random" not in fault.json()["fault"]
    bad = requests.post(f"{sandbox.url}{CONTROL}/latency", json={"call": "nope"}, timeout=5)
    assert bad.status_code == 400
