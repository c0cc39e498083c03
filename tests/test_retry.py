"""The retry rule, branch by branch: what is retried, how long we wait, what is never retried."""

from __future__ import annotations

import pytest
from urllib3.exceptions import ProtocolError
from urllib3.response import HTTPResponse

from align_integration.client.retry import background_delay, build_retry, is_retryable_status


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_429_and_5xx_are_retryable(status: int) -> None:
    assert is_retryable_status(status)
    assert build_retry().is_retry("POST", status, has_retry_after=False)


@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 403, 404, 409, 422])
def test_other_statuses_are_never_retried(status: int) -> None:
    assert not is_retryable_status(status)
    assert not build_retry().is_retry("POST", status, has_retry_after=False)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_every_method_is_retried_because_posts_carry_an_idempotency_key(method: str) -> None:
    assert build_retry()._is_method_retryable(method)


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
