"""How fast and how wide the sandbox serves: per-call latency and a cap on requests in flight.

Unlike a fault, these settings are not used up: every request of a call waits its latency,
and while ``max_in_flight`` requests are being served a further one is answered 429 with
``Retry-After`` at once, without acting — the back-pressure a real service applies.
The peak seen since the last :meth:`Pacing.reset` tells a benchmark how wide it really went.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .faults import INCOMING_CALLS, check_call


class Pacing:
    """Per-call latency and the in-flight cap of incoming vendor calls; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        """No latency, no cap; the peak starts again from what is in flight now."""
        with self._lock:
            self._latency: dict[str, float] = {}
            self._limit: int | None = None
            self._retry_after: float = 1
            self._limited_calls: frozenset[str] | None = None
            self._peak = self._in_flight

    def set_latency(self, call: str, seconds: float | None) -> None:
        """Every request of ``call`` waits ``seconds`` before it is served (``None``/0: none)."""
        check_call(call, INCOMING_CALLS)
        if seconds is not None and seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            if seconds:
                self._latency[call] = float(seconds)
            else:
                self._latency.pop(call, None)

    def latency(self, call: str) -> float:
        with self._lock:
            return self._latency.get(call, 0.0)

    def limit(
        self,
        max_in_flight: int | None,
        retry_after: float = 1,
        calls: Iterable[str] | None = None,
    ) -> None:
        """Cap the requests served at once (of ``calls``, default all incoming calls)."""
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be a positive count or None (no cap)")
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        names = None if calls is None else frozenset(calls)
        for name in names or ():
            check_call(name, INCOMING_CALLS)
        with self._lock:
            self._limit, self._retry_after, self._limited_calls = max_in_flight, retry_after, names

    @property
    def retry_after(self) -> float:
        with self._lock:
            return self._retry_after

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most requests (counted by the cap) served at once since the last reset."""
        with self._lock:
            return self._peak

    @contextmanager
    def admit(self, call: str) -> Iterator[bool]:
        """Count one request of ``call`` in flight while the block runs; yields ``False`` (and
        counts nothing) when the cap is reached."""
        with self._lock:
            counted = self._limited_calls is None or call in self._limited_calls
            if counted and self._limit is not None and self._in_flight >= self._limit:
                admitted = False
            else:
                admitted = True
                if counted:
                    self._in_flight += 1
                    self._peak = max(self._peak, self._in_flight)
        try:
            yield admitted
        finally:
            if admitted and counted:
                with self._lock:
                    self._in_flight -= 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency": dict(self._latency),
                "max_in_flight": self._limit,
                "retry_after": self._retry_after,
                "calls": sorted(self._limited_calls) if self._limited_calls else None,
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak,
            }
