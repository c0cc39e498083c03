"""The result of a flow, shaped like the old tool's ``(status_code, errors)`` pair."""

from __future__ import annotations

from typing import NamedTuple


class AlignResult(NamedTuple):
    """Unpacks as ``status_code, errors = result``; also ``.ok``."""

    status_code: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def success(cls) -> AlignResult:
        return cls(200, [])
