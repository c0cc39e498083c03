"""The log of every request the sandbox received or sent, and the counts tests assert on.

:class:`Recorder` keeps :class:`~.wire.RecordedRequest` rows in arrival order. Besides plain
counts per call it groups them per Align ``caseId``, per Idempotency-Key and per iTero Rx id,
so that a test or a benchmark can prove "exactly one patient created per case" (``acted``
counts leave out replays and refusals) and "one idempotency key per case" (no double attempt).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Literal

from .wire import RecordedRequest

Grouping = Literal["case", "key", "rx"]
GROUPINGS: tuple[Grouping, ...] = ("case", "key", "rx")


def _group_of(recorded: RecordedRequest, by: Grouping) -> str | None:
    if by == "case":
        return recorded.case_id
    if by == "key":
        return recorded.idempotency_key
    return recorded.rx_id


class Recorder:
    """Recorded requests, oldest first; waiters are woken on every new or settled request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []

    def record(self, recorded: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(recorded)
            self._changed.notify_all()

    def settled(self) -> None:
        """Wake the waiters: a recorded request got its answer (or its error)."""
        with self._changed:
            self._changed.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, name: str) -> list[RecordedRequest]:
        return [recorded for recorded in self.requests if recorded.call == name]

    def count(
        self,
        name: str,
        *,
        case_id: str | None = None,
        idempotency_key: str | None = None,
        rx_id: str | None = None,
        acted: bool | None = None,
    ) -> int:
        """How many requests of ``name`` were recorded, narrowed by any filter given."""
        return sum(
            1
            for r in self.calls(name)
            if (case_id is None or r.case_id == case_id)
            and (idempotency_key is None or r.idempotency_key == idempotency_key)
            and (rx_id is None or r.rx_id == rx_id)
            and (acted is None or r.acted == acted)
        )

    def counts(self, name: str, by: Grouping = "case", *, acted: bool = False) -> dict[str, int]:
        """Requests of ``name`` per case id, idempotency key or Rx id (those without one are
        left out); with ``acted`` only those the service acted on."""
        if by not in GROUPINGS:
            raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
        found = Counter(
            group
            for r in self.calls(name)
            if (not acted or r.acted) and (group := _group_of(r, by)) is not None
        )
        return dict(found)

    def keys_by_case(self, name: str) -> dict[str, list[str]]:
        """The distinct Idempotency-Keys of ``name`` per case id, first seen first: more than
        one key for a case means the client made a second logical attempt."""
        keys: dict[str, list[str]] = {}
        for r in self.calls(name):
            if r.case_id is not None and r.idempotency_key is not None:
                seen = keys.setdefault(r.case_id, [])
                if r.idempotency_key not in seen:
                    seen.append(r.idempotency_key)
        return keys

    def summary(self, name: str) -> dict[str, Any]:
        """Every count of one call, JSON-ready (the control endpoint ``/counts``)."""
        return {
            "call": name,
            "total": self.count(name),
            "acted": self.count(name, acted=True),
            "byCase": self.counts(name, "case"),
            "actedByCase": self.counts(name, "case", acted=True),
            "byKey": self.counts(name, "key"),
            "byRx": self.counts(name, "rx"),
            "keysByCase": self.keys_by_case(name),
        }

    def wait_changed(self, timeout: float) -> None:
        """Sleep until a request is recorded or settled, or ``timeout`` seconds passed."""
        with self._changed:
            self._changed.wait(timeout)

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until ``count`` requests of ``name`` were recorded (and, for outgoing calls,
        answered or failed); returns them, or raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(name)
            settled = [
                r for r in found if r.url is None or r.status is not None or r.error is not None
            ]
            if len(settled) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(settled)} of {count} {name!r} requests after {timeout}s")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))
