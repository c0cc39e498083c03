"""How a batch paces itself: the AIMD rule step by step, the gate, and throttled rows tried
again within the run with the same operation and idempotency key."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command
from requests.structures import CaseInsensitiveDict

from align_integration.models import CaseEvent, RemoteOperation
from align_integration.workflows.batch.pacing import (
    AimdLimit,
    InFlightGate,
    ThrottleWatch,
    throttle_wait,
)
from tests.ops.conftest import accepted_once


# -- the rule -----------------------------------------------------------------------------------
def test_aimd_starts_at_the_ceiling_and_halves_on_a_throttle() -> None:
    limit = AimdLimit(16)
    assert limit.allowed == 16
    first = [limit.start() for _ in range(16)]
    assert limit.throttled(first[0]) is True
    assert limit.allowed == 8 and limit.slowdowns == 1


def test_aimd_decreases_once_per_round() -> None:
    limit = AimdLimit(16)
    sent_before = [limit.start() for _ in range(16)]
    assert limit.throttled(sent_before[3]) is True
    # The other answers to requests sent at the old pace are the same congestion.
    assert limit.throttled(sent_before[4]) is False
    assert limit.throttled(sent_before[15]) is False
    assert limit.allowed == 8 and limit.slowdowns == 1
    sent_after = limit.start()
    assert limit.throttled(sent_after) is True  # a request sent at the new pace: a new round
    assert limit.allowed == 4 and limit.slowdowns == 2


def test_aimd_grows_back_by_one_per_round_of_successes() -> None:
    limit = AimdLimit(16)
    limit.throttled(limit.start())
    assert limit.allowed == 8
    for _ in range(8):  # one round: as many successes as the limit
        limit.succeeded(limit.start())
    assert limit.allowed == 9
    for _ in range(1000):
        limit.succeeded(limit.start())
    assert limit.allowed == 16  # never above the ceiling


def test_aimd_never_goes_below_the_floor() -> None:
    limit = AimdLimit(4)
    for _ in range(10):
        limit.throttled(limit.start())
    assert limit.allowed == 1 and limit.at_floor
    assert limit.slowdowns == 10


def test_fixed_concurrency_keeps_its_limit() -> None:
    limit = AimdLimit(32, factor=1.0)
    assert limit.throttled(limit.start()) is False
    assert limit.allowed == 32 and limit.slowdowns == 0


def test_throttle_wait_is_what_the_service_asked_else_doubling() -> None:
    assert throttle_wait(1.0, 1) == 1.0
    assert throttle_wait(0.0, 3) == 0.0
    assert [throttle_wait(None, tries) for tries in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert throttle_wait(None, 20) == 30.0


def test_gate_lets_through_only_the_allowed_number() -> None:
    gate, stop = InFlightGate(AimdLimit(2)), threading.Event()
    first, second = gate.enter(stop), gate.enter(stop)
    assert first is not None and second is not None
    waiting: list[int | None] = []
    thread = threading.Thread(target=lambda: waiting.append(gate.enter(stop)))
    thread.start()
    thread.join(0.3)
    assert waiting == []  # held back: two in flight
    gate.leave(first, throttled=True)  # and the limit is now 1
    thread.join(0.3)
    assert waiting == []
    gate.leave(second, throttled=False)
    thread.join(2)
    assert waiting and waiting[0] is not None
    stop.set()
    assert gate.enter(stop) is None


def test_a_row_is_admitted_only_when_a_request_could_go() -> None:
    gate, stop = InFlightGate(AimdLimit(1)), threading.Event()
    assert gate.admit(stop)  # admitting takes no place
    number = gate.enter(stop)
    admitted: list[bool] = []
    thread = threading.Thread(target=lambda: admitted.append(gate.admit(stop)))
    thread.start()
    thread.join(0.3)
    assert admitted == []  # the one place is taken
    gate.leave(number, throttled=False)  # type: ignore[arg-type]
    thread.join(2)
    assert admitted == [True]
    stop.set()
    assert not gate.admit(stop)


class StubClient:
    """Answers ``status`` to every request; notes how many were in flight at the gate."""

    def __init__(self, gate: InFlightGate, status: int, headers: dict[str, str]) -> None:
        self.gate, self.status, self.headers = gate, status, headers
        self.in_flight_seen: list[int] = []

    def send(self, *args: Any, **kwargs: Any) -> Any:
        self.in_flight_seen.append(self.gate._in_flight)
        response = requests.Response()
        response.status_code, response.headers = self.status, CaseInsensitiveDict(self.headers)
        return response

    def clincheck_accept(self) -> int:
        return self.send("clincheck_accept", "PUT", "/x").status_code


@pytest.mark.parametrize(
    ("status", "headers", "slowed"),
    [(200, {}, 0), (429, {"Retry-After": "1"}, 1), (503, {}, 1), (202, {"Retry-After": "5"}, 1)],
)
def test_a_request_holds_its_place_only_while_in_flight(
    status: int, headers: dict[str, str], slowed: int
) -> None:
    gate = InFlightGate(AimdLimit(4))
    client = StubClient(gate, status, headers)
    watched: Any = ThrottleWatch(client, gate)  # type: ignore[arg-type]

    assert watched.clincheck_accept() == status

    assert client.in_flight_seen == [1]  # its place, while it was sent
    assert gate._in_flight == 0  # and given back with the answer
    assert gate.slowdowns == slowed
    assert gate.limit.allowed == (2 if slowed else 4)


# -- within a run -------------------------------------------------------------------------------
def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("align_clincheck_accept", *args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db
def test_a_row_answered_429_is_tried_again_within_the_run(
    sent_case: Any, align_sandbox: Any
) -> None:
    case = sent_case()
    align_sandbox.inject_fault("clincheck_accept", status=429, retry_after=0, times=2)
    code, out = run("--case", str(case.uuid))
    assert code == 0, out
    assert "1 succeeded" in out and "0 failed" in out
    assert "slowed down" in out and "2 rows tried again" in out
    calls = align_sandbox.calls("clincheck_accept")
    assert [call.status for call in calls] == [429, 429, 200]
    assert len({call.idempotency_key for call in calls}) == 1  # one operation, one key
    assert accepted_once(align_sandbox) == {str(case.pk): 1}
    operation = RemoteOperation.objects.get(case=case, kind=RemoteOperation.CLINCHECK_ACCEPT)
    assert (operation.state, operation.attempts) == (RemoteOperation.SUCCEEDED, 3)
    outcomes = list(
        CaseEvent.objects.filter(operation=operation)
        .order_by("pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes.count(CaseEvent.RETRY_SCHEDULED) == 2 and outcomes[-1] == CaseEvent.SUCCEEDED


@pytest.mark.django_db
def test_a_row_throttled_beyond_its_tries_fails_with_its_background_retry(
    sent_case: Any, align_sandbox: Any
) -> None:
    case = sent_case()
    align_sandbox.inject_fault("clincheck_accept", status=503, retry_after=0, times=None)
    code, out = run("--case", str(case.uuid))
    assert code == 1
    operation = RemoteOperation.objects.get(case=case, kind=RemoteOperation.CLINCHECK_ACCEPT)
    assert operation.state == RemoteOperation.RETRY_SCHEDULED  # the background still has it
    assert operation.attempts == 7  # the first try and six more: 429/503 are not retried twice
    assert align_sandbox.count("clincheck_accept") == 7


@pytest.mark.django_db(transaction=True)
def test_concurrent_rows_under_throttling_are_each_accepted_once(
    sent_case: Any, align_sandbox: Any
) -> None:
    cases = [sent_case() for _ in range(12)]
    align_sandbox.inject_fault(
        "clincheck_accept", status=429, retry_after=0, rate=0.3, seed=7, times=None
    )
    align_sandbox.inject_fault("clincheck_accept", delay=0.02, times=None)
    align_sandbox.limit_in_flight(3, retry_after=0)
    refs = [arg for case in cases for arg in ("--case", str(case.uuid))]
    code, out = run(*refs, "--concurrency", "8")
    assert code == 0, out
    assert "12 succeeded" in out and "slowed down" in out
    assert accepted_once(align_sandbox) == {str(case.pk): 1 for case in cases}
