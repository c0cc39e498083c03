"""The retry rule for in-request retries, and the backoff for background retries.

In-request retries use urllib3's ``Retry`` (mounted on the session's adapter): timeouts,
connection errors, 429 and 5xx are retried with capped exponential backoff and jitter,
``Retry-After`` is honoured up to a cap, other 4xx never.  Every method is retried: POSTs
carry an ``Idempotency-Key`` made before the first attempt, so a retry cannot act twice.
"""

from __future__ import annotations

import random
from typing import Any

from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, *range(500, 600)})


def is_retryable_status(status: int) -> bool:
    """429 and every 5xx are worth another try; nothing else is."""
    return status in RETRY_STATUSES


def build_retry(
    *,
    total: int = 3,
    backoff_factor: float = 0.5,
    backoff_max: float = 10.0,
    backoff_jitter: float = 0.5,
    retry_after_max: int = 30,
) -> Retry:
    return Retry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        redirect=0,
        allowed_methods=None,  # every method: our POSTs are idempotent by key
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
        respect_retry_after_header=True,
        retry_after_max=retry_after_max,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def retry_from_settings(service: dict[str, Any]) -> Retry:
    return build_retry(
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
