"""The retry rule for in-request retries, and the backoff for background retries.

The rule is two small pure functions, tested branch by branch:

- :func:`may_resend` — may this request be sent a second time at all?  A GET (HEAD,
  OPTIONS) may; a POST, PUT, PATCH or DELETE only when it carries an ``Idempotency-Key``
  *and* the service honours one (the Align integration service does; the iTero lab API
  publishes no such scheme, so iTero retries GETs only).  An OAuth grant, a pairing or a
  return scan is therefore never sent twice because an answer was lost.
- :func:`should_retry` — given what went wrong, is another try now worth it?  A failure to
  connect (nothing was sent) always is; a timeout or a dropped answer only when the request
  may be re-sent; an answer only when it may be re-sent and is 429 or 5xx, and its
  ``Retry-After`` (if any) is within ``RETRY_AFTER_MAX``.  Other 4xx never.

:class:`AlignRetry` (urllib3's ``Retry``) applies them inside the HTTP adapter, with capped
exponential backoff and jitter.  A ``Retry-After`` above the cap ends the in-request retries
at once: the caller then schedules a background retry (:func:`background_delay`) that
waits the whole time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import math
import random
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any, Self, cast

from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, *range(500, 600)})
#: Methods whose repetition cannot make the service act twice.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Failure(enum.Enum):
    """What went wrong with one try of a request."""

    CONNECT = "connect"  # no connection: the request was never sent
    READ = "read"  # sent, but the answer timed out or the connection dropped
    STATUS = "status"  # an answer came, with a status worth looking at


def is_retryable_status(status: int) -> bool:
    """429 and every 5xx are worth another try; nothing else is."""
    return status in RETRY_STATUSES


def may_resend(
    method: str, headers: Mapping[str, str], *, honours_idempotency_key: bool = True
) -> bool:
    """Whether a request may be sent again after its answer was lost or was a 429/5xx."""
    if method.upper() in SAFE_METHODS:
        return True
    return honours_idempotency_key and bool(headers.get(IDEMPOTENCY_HEADER))


def should_retry(
    failure: Failure,
    *,
    resend: bool,
    status: int | None = None,
    retry_after: float | None = None,
    retry_after_max: float = 30,
    statuses: Collection[int] = RETRY_STATUSES,
) -> bool:
    """The in-request retry rule (the budget of tries is counted by urllib3); ``statuses``
    are the answers worth another try (429 and 5xx unless the caller paces itself)."""
    if failure is Failure.CONNECT:
        return True  # nothing reached the service: trying again cannot act twice
    if not resend:
        return False
    if failure is Failure.READ:
        return True
    if status is None or status not in statuses:
        return False
    return retry_after is None or retry_after <= retry_after_max


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


class AlignRetry(Retry):
    """urllib3's ``Retry`` deciding with :func:`should_retry`.

    ``resend`` is :func:`may_resend`'s answer for the requests this instance serves (the
    adapter keeps one instance per answer, see ``client.http.RetryingAdapter``).
    """

    def __init__(
        self,
        *args: Any,
        resend: bool = True,
        statuses: Collection[int] = RETRY_STATUSES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.resend = resend
        self.statuses = frozenset(statuses)

    def new(self, **kw: Any) -> Self:
        kw.setdefault("resend", self.resend)
        kw.setdefault("statuses", self.statuses)
        return super().new(**kw)

    def _is_method_retryable(self, method: str) -> bool:
        # urllib3 asks this before retrying a read error: the request was sent.
        return should_retry(Failure.READ, resend=self.resend)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Without urllib3's own rule, which would also retry a 413 with Retry-After.
        return should_retry(
            Failure.STATUS, resend=self.resend, status=status_code, statuses=self.statuses
        )

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if response is not None:
            header = response.headers.get("Retry-After")
            wait = requested_wait(header) if header else None
            if not should_retry(
                Failure.STATUS,
                resend=self.resend,
                status=response.status,
                retry_after=wait,
                retry_after_max=self.retry_after_max,
                statuses=self.statuses,
            ):
                # The answer is handed back as it is (raise_on_status is off).
                reason = f"answer {response.status} (Retry-After {header}) not retried in-request"
                # urllib3 types the pool as required but passes None itself at times.
                pool = cast(ConnectionPool, _pool)
                raise MaxRetryError(pool, url or "", ResponseError(reason))
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None:
            # urllib3 would next read the answer being retried whole to reuse its
            # connection; with no size cap, closing the connection is the safer cost.
            response.close()
            response.release_conn()
        return retry


def build_retry(
    *,
    statuses: Collection[int] = RETRY_STATUSES,
    total: int = 3,
    backoff_factor: float = 0.5,
    backoff_max: float = 10.0,
    backoff_jitter: float = 0.5,
    retry_after_max: int = 30,
    resend: bool = True,
) -> AlignRetry:
    return AlignRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        redirect=0,
        allowed_methods=None,  # the method rule is should_retry's, through ``resend``
        status_forcelist=frozenset(statuses),
        statuses=frozenset(statuses),
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
        # urllib3 retries a 429/503 with Retry-After whatever the status list says: only
        # when those are ours to retry.
        respect_retry_after_header=bool({429, 503} & set(statuses)),
        retry_after_max=retry_after_max,
        raise_on_status=False,
        raise_on_redirect=False,
        resend=resend,
    )


def retry_from_settings(
    service: Mapping[str, Any],
    *,
    resend: bool = True,
    statuses: Collection[int] = RETRY_STATUSES,
) -> AlignRetry:
    """The in-request retry of ``service``'s settings; ``statuses``: the answers retried
    (a caller that paces itself, like the batch commands, leaves 429 and 503 to itself)."""
    return build_retry(
        statuses=statuses,
        total=int(service["RETRIES"]),
        backoff_factor=float(service["BACKOFF_FACTOR"]),
        backoff_max=float(service["BACKOFF_MAX"]),
        backoff_jitter=float(service["BACKOFF_JITTER"]),
        retry_after_max=int(service["RETRY_AFTER_MAX"]),
        resend=resend,
    )


def doubling(attempt: int, *, base: float, cap: float = math.inf) -> float:
    """``base`` doubled for every attempt after the first (``attempt`` >= 1), capped: the
    one backoff curve of the app (background retries, downloads, callbacks, batch pacing)."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


def background_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    jitter: bool = True,
) -> float:
    """Seconds before background attempt ``attempt + 1`` (``attempt`` >= 1).

    :func:`doubling`, with jitter in the upper half (unless ``jitter`` is off, for waits a
    person reads, such as a scan's next download), never below ``Retry-After``.
    """
    exponential = doubling(attempt, base=base, cap=cap)
    delay = exponential / 2 + random.uniform(0, exponential / 2) if jitter else exponential
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
