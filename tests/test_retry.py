"""The retry rule, branch by branch: what is retried, how long we wait, what is never retried.

(The same rule through the real adapter and a local server: tests/test_client_http.py.)
"""

from __future__ import annotations

import pytest
from urllib3.exceptions import ProtocolError
from urllib3.response import HTTPResponse

from align_integration.client.retry import (
    Failure,
    background_delay,
    build_retry,
    doubling,
    is_retryable_status,
    may_resend,
    should_retry,
)

KEY = {"Idempotency-Key": "k-1"}


@pytest.mark.parametrize("method", ["GET", "get", "HEAD", "OPTIONS"])
def test_safe_methods_may_always_be_resent(method: str) -> None:
    assert may_resend(method, {})
    assert may_resend(method, {}, honours_idempotency_key=False)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_may_be_resent_only_with_an_idempotency_key(method: str) -> None:
    assert may_resend(method, KEY)
    assert not may_resend(method, {})
    assert not may_resend(method, {"Idempotency-Key": ""})


def test_a_key_counts_only_where_the_service_honours_it() -> None:
    """iTero publishes no idempotency scheme: its writes are never resent."""
    assert not may_resend("POST", KEY, honours_idempotency_key=False)


@pytest.mark.parametrize("resend", [True, False])
def test_a_failed_connection_is_retried_whatever_the_method(resend: bool) -> None:
    assert should_retry(Failure.CONNECT, resend=resend)  # nothing was sent


def test_a_lost_answer_is_retried_only_when_the_request_may_be_resent() -> None:
    assert should_retry(Failure.READ, resend=True)
    assert not should_retry(Failure.READ, resend=False)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_429_and_5xx_answers_are_retried_only_when_the_request_may_be_resent(
    status: int,
) -> None:
    assert should_retry(Failure.STATUS, resend=True, status=status)
    assert not should_retry(Failure.STATUS, resend=False, status=status)


@pytest.mark.parametrize("status", [None, 200, 301, 400, 401, 403, 404, 409, 413, 422])
def test_other_answers_are_never_retried(status: int | None) -> None:
    assert not should_retry(Failure.STATUS, resend=True, status=status)


def test_retry_after_within_the_cap_is_retried_and_above_it_is_not() -> None:
    assert should_retry(Failure.STATUS, resend=True, status=503, retry_after=10, retry_after_max=10)
    assert not should_retry(
        Failure.STATUS, resend=True, status=503, retry_after=11, retry_after_max=10
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_429_and_5xx_are_retryable(status: int) -> None:
    assert is_retryable_status(status)
    assert build_retry().is_retry("POST", status, has_retry_after=False)


@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 403, 404, 409, 422])
def test_other_statuses_are_never_retried(status: int) -> None:
    assert not is_retryable_status(status)
    assert not build_retry().is_retry("POST", status, has_retry_after=False)


@pytest.mark.parametrize("status", [413, 429, 503])
def test_a_retry_instance_follows_resend(status: int) -> None:
    assert not build_retry(resend=False).is_retry("GET", status, has_retry_after=True)
    assert not build_retry(resend=False)._is_method_retryable("GET")
    assert build_retry(resend=True).is_retry("POST", status, has_retry_after=True) is (
        status != 413
    )


def test_a_lost_answer_of_a_single_shot_request_is_raised_not_retried() -> None:
    single_shot = build_retry(total=3, resend=False)
    with pytest.raises(ProtocolError):
        single_shot.increment(method="POST", url="/oauth/token", error=ProtocolError("reset"))
    assert single_shot.new().resend is False  # kept through urllib3's copies


def test_retry_budget_is_exhausted_after_total_attempts() -> None:
    retry = build_retry(total=2)
    retry = retry.increment(method="POST", url="/patients", error=ProtocolError("reset"))
    retry = retry.increment(method="POST", url="/patients", error=ProtocolError("reset"))
    with pytest.raises(Exception, match="Max retries"):
        retry.increment(method="POST", url="/patients", error=ProtocolError("reset"))


def test_backoff_grows_exponentially_and_is_capped() -> None:
    retry = build_retry(total=10, backoff_factor=1.0, backoff_max=5.0, backoff_jitter=0.0)
    waits = []
    for _ in range(5):
        retry = retry.increment(method="GET", url="/orders", error=ProtocolError("reset"))
        waits.append(retry.get_backoff_time())
    assert waits == sorted(waits)
    assert waits[-1] == 5.0
    assert waits[1] > waits[0]


def test_jitter_adds_at_most_the_jitter() -> None:
    retry = build_retry(total=5, backoff_factor=1.0, backoff_max=60, backoff_jitter=0.5)
    retry = retry.increment(method="GET", url="/x", error=ProtocolError("reset"))
    retry = retry.increment(method="GET", url="/x", error=ProtocolError("reset"))
    base = 2.0
    samples = {retry.get_backoff_time() for _ in range(50)}
    assert all(base <= s <= base + 0.5 for s in samples)
    assert len(samples) > 1


def test_retry_after_is_honoured_and_capped() -> None:
    retry = build_retry(retry_after_max=30)
    short = HTTPResponse(status=503, headers={"Retry-After": "7"})
    long = HTTPResponse(status=429, headers={"Retry-After": "3600"})
    assert retry.get_retry_after(short) == 7
    assert retry.get_retry_after(long) == 30


def test_background_delay_grows_and_respects_retry_after_and_cap() -> None:
    first = [background_delay(1, base=30, cap=3600) for _ in range(20)]
    fourth = [background_delay(4, base=30, cap=3600) for _ in range(20)]
    assert all(15 <= d <= 30 for d in first)
    assert all(120 <= d <= 240 for d in fourth)
    assert background_delay(1, base=30, cap=3600, retry_after=500) >= 500
    assert background_delay(30, base=30, cap=100) <= 100
    assert background_delay(1, base=30, cap=100, retry_after=10_000) <= 100


def test_a_retry_after_longer_than_the_cap_ends_in_request_retries() -> None:
    from urllib3.exceptions import MaxRetryError

    retry = build_retry(total=3, retry_after_max=10)
    long = HTTPResponse(status=503, headers={"Retry-After": "120"})
    short = HTTPResponse(status=503, headers={"Retry-After": "2"})
    with pytest.raises(MaxRetryError):
        retry.increment(method="POST", url="/patients", response=long)
    assert retry.increment(method="POST", url="/patients", response=short).total == 2


def test_retry_after_as_an_http_date() -> None:
    import datetime as dt
    from email.utils import format_datetime

    from align_integration.client.retry import requested_wait

    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=90)
    assert 80 <= requested_wait(format_datetime(later, usegmt=True)) <= 91
    assert requested_wait("soon") is None
    assert requested_wait("7") == 7


def test_the_one_backoff_curve_doubles_from_the_base_and_stops_at_the_cap() -> None:
    assert [doubling(n, base=30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert doubling(0, base=30) == 30  # no attempt yet waits the base
    assert doubling(10, base=30, cap=300) == 300


def test_a_wait_a_person_reads_has_no_jitter() -> None:
    assert background_delay(3, base=60, cap=3600, jitter=False) == 240
    assert background_delay(3, base=60, cap=3600, retry_after=900, jitter=False) == 900
    jittered = {background_delay(3, base=60, cap=3600) for _ in range(20)}
    assert all(120 <= delay <= 240 for delay in jittered) and len(jittered) > 1
