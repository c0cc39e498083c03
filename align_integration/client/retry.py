"""The retry rule for in-request retries, and the backoff for background retries.

In-request retries use urllib3's ``Retry`` (mounted on the session's adapter): timeouts,
connection errors, 429 and 5xx are retried with capped exponential backoff and jitter,
``Retry-After`` is honoured up to a cap, other 4xx never.  Every method is retried: POSTs
carry an ``Idempotency-Key`` made before the first attempt, so a retry cannot act twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Collection
from typing import Any

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, *range(500, 600)})


def is_retryable_status(status: int) -> bool:
    """429 and every 5xx are worth another try; nothing else is."""
    return status in RETRY_STATUSES


class AlignRetry(Retry):
    """urllib3's ``Retry``, except that a ``Retry-After`` longer than ``retry_after_max``
    ends the in-request retries at once (the answer is returned) instead of being cut
    short: the caller then schedules a background retry that honours the whole wait."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        response = kwargs.get("response")
        header = response.headers.get("Retry-After") if response is not None else None
        wait = requested_wait(header) if header else None
        if wait is not None and wait > self.retry_after_max:
            url = kwargs.get("url") or (args[1] if len(args) > 1 else "")
            raise MaxRetryError(
                kwargs.get("_pool"),
                url,
                ResponseError(f"Retry-After {wait:.0f} s exceeds {self.retry_after_max} s"),
            )
        return super().increment(*args, **kwargs)


def requested_wait(header: str) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or an HTTP date)."""
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(tz=dt.UTC)).total_seconds())


def build_retry(
    *,
    statuses: Collection[int] = RETRY_STATUSES,
    total: int = 3,
    backoff_factor: float = 0.5,
    backoff_max: float = 10.0,
    backoff_jitter: float = 0.5,
    retry_after_max: int = 30,
) -> Retry:
    return AlignRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        redirect=0,
        allowed_methods=None,  # every method: our POSTs are idempotent by key
        status_forcelist=frozenset(statuses),
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
        # urllib3 retries a 429/503 with Retry-After whatever the status list says: only
        # when those are ours to retry.
        respect_retry_after_header=bool({429, 503} & set(statuses)),
        retry_after_max=retry_after_max,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def retry_from_settings(
    service: dict[str, Any], *, statuses: Collection[int] = RETRY_STATUSES
) -> Retry:
    """The in-request retry of ``service``'s settings; ``statuses``: the answers retried
    (a caller that paces itself, like the batch commands, leaves 429 and 503 to itself)."""
    return build_retry(
        statuses=statuses,
        total=int(service["RETRIES"]),
        backoff_factor=float(service["BACKOFF_FACTOR"]),
        backoff_max=float(service["BACKOFF_MAX"]),
        backoff_jitter=float(service["BACKOFF_JITTER"]),
        retry_after_max=int(service["RETRY_AFTER_MAX"]),
    )


def background_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Seconds before background attempt ``attempt + 1`` (``attempt`` >= 1).

    Exponential with full jitter in the upper half, never below ``Retry-After``.
    """
    exponential = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exponential / 2 + random.uniform(0, exponential / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
