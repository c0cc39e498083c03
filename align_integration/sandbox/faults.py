"""Fault injection: the failures a test can ask the sandbox to stage, call by call.

A :class:`Fault` applies to the next ``times`` requests of one call name (``None`` = forever),
each with ``probability`` (1: every one).  It can answer an error status (with
``Retry-After``) without acting, delay the answer, or drop the connection before acting,
after acting (the ambiguous failure every client must survive), or half-way through the body.
:class:`Capacity` answers 429 to requests beyond a number in flight at once.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .wire import Reply

ALIGN_CALLS = (
    "token",
    "create_patient",
    "find_patients",
    "create_order",
    "find_orders",
    "upload_assets",
    "clincheck_accept",
    "clincheck_revise",
)
ITERO_CALLS = (
    "itero_login",
    "itero_token",
    "itero_revoke",
    "discovery",
    "accounts",
    "pair",
    "unpair",
    "orders",
    "order",
    "download",
    "return_scan",
)
OUTGOING_CALLS = ("notify", "callback")
CALL_NAMES = ALIGN_CALLS + ITERO_CALLS + OUTGOING_CALLS
DROP_KINDS = ("before", "after", "partial")


@dataclass
class Fault:
    """One staged failure; see :meth:`Sandbox.inject_fault` for the meaning of each field."""

    call: str
    status: int | None = None
    retry_after: float | str | None = None
    delay: float = 0.0
    drop: str | None = None
    times: int | None = 1
    body: Any = None
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < float(self.probability) <= 1:
            raise ValueError("probability must be above 0 and at most 1")
        if self.call not in CALL_NAMES:
            raise ValueError(
                f"unknown call name {self.call!r}; expected one of {', '.join(CALL_NAMES)}"
            )
        if self.drop is not None and self.drop not in DROP_KINDS:
            raise ValueError(f"drop must be one of {DROP_KINDS} or None, not {self.drop!r}")
        if self.status is not None and self.drop is not None:
            raise ValueError("a fault either answers a status or drops the connection, not both")
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"status {self.status!r} is not an HTTP status")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be a positive count or None (forever)")
        if self.delay < 0:
            raise ValueError("delay must not be negative")

    def reply(self) -> Reply:
        """The answer of a status fault: JSON errors, or ``body`` as given."""
        assert self.status is not None
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            retry_after = self.retry_after
            if isinstance(retry_after, float) and retry_after.is_integer():
                retry_after = int(retry_after)
            headers["Retry-After"] = str(retry_after)
        if isinstance(self.body, bytes | str):
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return Reply(self.status, raw, {"Content-Type": "application/json", **headers})
        payload = (
            self.body
            if self.body is not None
            else {"errors": [f"injected fault: HTTP {self.status}"]}
        )
        return Reply.of_json(self.status, payload, headers)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if isinstance(data["body"], bytes):
            data["body"] = data["body"].decode("utf-8", errors="replace")
        return data


class FaultBook:
    """The staged faults, used up in the order they were added; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, call: str) -> Fault | None:
        """The fault to apply to this request of ``call`` (using one of its ``times``), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.call != call:
                    continue
                if fault.probability < 1 and random.random() >= fault.probability:  # noqa: S311
                    continue  # not this time; a later fault for the call may apply
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


class Capacity:
    """At most ``limit`` requests in flight at once (``None``: no limit); the ones beyond
    are answered ``status`` with ``Retry-After`` without acting.  Counts what it refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.status = 429
        self.retry_after: float | None = 1
        self.in_flight = 0
        self.refused = 0

    def set(self, limit: int | None, status: int = 429, retry_after: float | None = 1) -> None:
        with self._lock:
            self.limit, self.status, self.retry_after = limit, status, retry_after
            self.refused = 0

    def enter(self) -> Fault | None:
        """Take a place; ``None`` when taken, else the fault to answer with."""
        with self._lock:
            if self.limit is not None and self.in_flight >= self.limit:
                self.refused += 1
                return Fault("create_patient", status=self.status, retry_after=self.retry_after)
            self.in_flight += 1
            return None

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
