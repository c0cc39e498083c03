"""How fast a batch talks to Align: as many requests in flight as the service takes.

- :class:`AimdLimit` is the rule, a small pure class: the limit starts at the command's
  ``--concurrency`` and grows back by one per round of successes (additive increase); a
  throttle (429, 503, or any answer with ``Retry-After``) halves it (multiplicative
  decrease), once per round: answers to requests sent before the last decrease do not
  decrease it again.
- :class:`InFlightGate` holds requests back while the limit is reached; at the floor (one
  request) a further throttle also pauses new requests for the time the service asked.
  A request holds its place only while in flight (:class:`ThrottleWatch`); a row starts
  only when a request could go (:meth:`InFlightGate.admit`).
- :class:`RateLimiter`: ``--rate``, an optional ceiling of requests started per second.
- :func:`throttle_wait`: how long a throttled row waits before it is tried again.
- :func:`batch_client` leaves 429 and 503 to this pacing (no in-request retry of them);
  :class:`ThrottleWatch` wraps a thread's client to see them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import requests

from align_integration.client.errors import AlignError
from align_integration.client.retry import (
    RETRY_STATUSES,
    doubling,
    requested_wait,
    retry_from_settings,
)
from align_integration.client.service import AlignServiceClient
from align_integration.conf import get_setting

#: Answers that mean "slow down": the batch paces itself on them instead of retrying inside
#: the request.
THROTTLE_STATUSES = frozenset({429, 503})

#: A throttled row is tried again this many times within the run, then reported failed
#: with its background retry.  Each try is an attempt of the row's operation; this many
#: leave background attempts (``OPERATION_MAX_ATTEMPTS``, 8 by default) to spare.
THROTTLE_RETRIES = 6
#: Wait before retrying a throttled row that came without ``Retry-After``: doubled per try.
THROTTLE_BACKOFF = 1.0
THROTTLE_BACKOFF_MAX = 30.0


def throttle_wait(retry_after: float | None, tries: int) -> float:
    """Seconds a row waits after its ``tries``-th throttled answer (``tries`` >= 1)."""
    if retry_after is not None:
        return max(0.0, retry_after)
    return doubling(tries, base=THROTTLE_BACKOFF, cap=THROTTLE_BACKOFF_MAX)


@dataclass
class AimdLimit:
    """Additive-increase, multiplicative-decrease limit of requests in flight.

    Requests are numbered by :meth:`start`; :meth:`succeeded` and :meth:`throttled` take
    that number.  ``allowed`` is how many may be in flight now.
    """

    ceiling: int
    floor: int = 1
    factor: float = 0.5
    limit: int = field(init=False)
    slowdowns: int = field(default=0, init=False)
    _started: int = field(default=0, init=False)
    _round_start: int = field(default=0, init=False)
    _successes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.ceiling = max(1, int(self.ceiling))
        self.floor = max(1, min(int(self.floor), self.ceiling))
        self.limit = self.ceiling

    @property
    def allowed(self) -> int:
        return self.limit

    @property
    def at_floor(self) -> bool:
        return self.limit <= self.floor

    def start(self) -> int:
        """Number the next request sent."""
        number = self._started
        self._started += 1
        return number

    def succeeded(self, number: int) -> None:
        """One more success: the limit grows by one per ``limit`` successes, to the ceiling."""
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit = min(self.ceiling, self.limit + 1)

    def throttled(self, number: int) -> bool:
        """A throttle on request ``number``; True when it slowed the batch down.

        Requests sent before the last decrease were sent at the old pace: their throttles
        are the same congestion, already answered.
        """
        if number < self._round_start or self.factor >= 1:
            return False  # the same congestion, already answered; or a fixed limit
        self.limit = max(self.floor, int(self.limit * self.factor))
        self._round_start = self._started
        self._successes = 0
        self.slowdowns += 1
        return True


class InFlightGate:
    """Lets at most ``limit.allowed`` threads through at once (shared by a batch's threads)."""

    def __init__(self, limit: AimdLimit) -> None:
        self.limit = limit
        self._in_flight = 0
        self._paused_until = 0.0
        self._condition = threading.Condition()

    @property
    def slowdowns(self) -> int:
        return self.limit.slowdowns

    def _wait_for_room(self, stop: threading.Event | None) -> bool:
        """With the condition held: wait until a request could go now (a place free, no
        pause); False when ``stop`` was set meanwhile."""
        while stop is None or not stop.is_set():
            pause = self._paused_until - time.monotonic()
            if pause <= 0 and self._in_flight < self.limit.allowed:
                return True
            self._condition.wait(timeout=min(max(pause, 0.05), 0.5))
        return False

    def enter(self, stop: threading.Event | None = None) -> int | None:
        """Wait for a place; the request's number, or ``None`` when ``stop`` was set."""
        with self._condition:
            if not self._wait_for_room(stop):
                return None
            self._in_flight += 1
            return self.limit.start()

    def admit(self, stop: threading.Event) -> bool:
        """Wait until a request could go now, without taking the place: a row starts its
        work (its claim, its timeline entry) only then, so rows do not pile up behind a
        throttling service.  False when ``stop`` was set."""
        with self._condition:
            return self._wait_for_room(stop)

    def leave(self, number: int, *, throttled: bool, wait: float = 0.0) -> None:
        """The request is answered; ``throttled`` with the ``wait`` the service asked for."""
        with self._condition:
            self._in_flight -= 1
            if throttled:
                at_floor = self.limit.at_floor
                slowed = self.limit.throttled(number)
                if slowed and at_floor and wait > 0:
                    # Down to one request and still told to wait: everybody waits.
                    self._paused_until = max(self._paused_until, time.monotonic() + wait)
            else:
                self.limit.succeeded(number)
            self._condition.notify_all()


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (``rate <= 0``: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Block until this caller's slot; False if ``stop`` was set meanwhile."""
        if not self.interval:
            return not stop.is_set()
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


def batch_client() -> AlignServiceClient:
    """A client whose in-request retries leave 429 and 503 to the batch's pacing."""
    statuses = RETRY_STATUSES - THROTTLE_STATUSES
    return AlignServiceClient(retry=retry_from_settings(get_setting("SERVICE"), statuses=statuses))


class ThrottleWatch:
    """The thread's client: each of its requests takes a place at the ``gate`` while it is
    in flight (the database work around it takes none; a throttling answer, 429 or 503 or
    any ``Retry-After``, slows the gate down), and the last "slow down" error any call
    raised is noted for the row."""

    def __init__(self, client: AlignServiceClient, gate: InFlightGate | None = None) -> None:
        self._client = client
        self.throttle: AlignError | None = None
        if gate is not None:
            # Every request of this thread's own client passes ``send``, the token's too.
            client.send = _gated(client.send, gate)  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except AlignError as error:
                if error.status_code in THROTTLE_STATUSES or error.retry_after is not None:
                    self.throttle = error
                raise

        return call


def _gated(send: Callable[..., requests.Response], gate: InFlightGate) -> Callable[..., Any]:
    def gated_send(*args: Any, **kwargs: Any) -> requests.Response:
        # A started row's request always goes (its operation is claimed): no stop here.
        number = gate.enter()
        throttled, wait = False, 0.0
        try:
            response = send(*args, **kwargs)
            header = response.headers.get("Retry-After")
            throttled = response.status_code in THROTTLE_STATUSES or header is not None
            if throttled:
                wait = throttle_wait(requested_wait(header) if header else None, 1)
            return response
        finally:
            gate.leave(cast(int, number), throttled=throttled, wait=wait)

    return gated_send
