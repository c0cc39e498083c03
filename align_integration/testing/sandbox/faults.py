"""Fault injection: the failures a test can ask the sandbox to stage, call by call.

A :class:`Fault` applies to the next ``times`` requests of one call name (``None`` = forever)
— or, with ``rate`` below 1, to that fraction of them, drawn from its own random generator
(seeded with ``seed`` for a repeatable run). It can answer an error status (with
``Retry-After``) without acting, delay the answer, or drop the connection before acting,
after acting (the ambiguous failure every client must survive), or half-way through the body.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from .wire import json_reply

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
INCOMING_CALLS = ALIGN_CALLS + ITERO_CALLS
DROP_KINDS = ("before", "after", "partial")


def check_call(call: str, names: tuple[str, ...] = CALL_NAMES) -> None:
    if call not in names:
        raise ValueError(f"unknown call name {call!r}; expected one of {', '.join(names)}")


def retry_after_header(retry_after: float | str | None) -> dict[str, str]:
    """``{"Retry-After": …}`` (whole seconds written without a decimal point), or nothing."""
    if retry_after is None:
        return {}
    if isinstance(retry_after, float) and retry_after.is_integer():
        retry_after = int(retry_after)
    return {"Retry-After": str(retry_after)}


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
    rate: float = 1.0
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_call(self.call)
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
        if not 0 < self.rate <= 1:
            raise ValueError("rate must be above 0 and at most 1")
        self._random = random.Random(self.seed)  # noqa: S311 - test traffic, not secrets

    def strikes(self) -> bool:
        """Whether this request is one the fault hits (always, unless ``rate`` is below 1)."""
        return self.rate >= 1 or self._random.random() < self.rate

    def reply(self) -> Response:
        """The answer of a status fault: JSON errors, or ``body`` as given."""
        assert self.status is not None
        headers = retry_after_header(self.retry_after)
        if isinstance(self.body, bytes | str):
            return Response(self.body, self.status, headers, content_type="application/json")
        payload = (
            self.body
            if self.body is not None
            else {"errors": [f"injected fault: HTTP {self.status}"]}
        )
        return json_reply(self.status, payload, headers)

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(self).items() if not key.startswith("_")}
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
                if fault.call != call or not fault.strikes():
                    continue
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
