"""What a batch run reports: one :class:`RowResult` per input row, and the
:class:`BatchReport` whose summary line the commands print."""

from __future__ import annotations

from dataclasses import dataclass, field

from align_integration.workflows.batch.actions import (
    ALREADY_DONE,
    DUPLICATE,
    FAILED,
    NOT_RUN,
    PAUSED,
    SUCCEEDED,
    WOULD_SEND,
)


@dataclass(frozen=True)
class RowResult:
    """One report row."""

    index: int
    line: int | None
    case_ref: str
    outcome: str
    status: int | None = None
    message: str = ""

    @property
    def cells(self) -> tuple[object, ...]:
        return (
            "" if self.line is None else self.line,
            self.case_ref,
            self.outcome,
            "" if self.status is None else self.status,
            self.message,
        )


@dataclass
class BatchReport:
    results: list[RowResult] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0
    slowdowns: int = 0  # how many times the service's throttling slowed the batch down
    throttled_retries: int = 0  # rows tried again within the run after a throttle
    processes: int = 1  # processes that shared the rows
    one_process_because: str = ""  # why more processes were planned but one ran

    def count(self, *outcomes: str) -> int:
        return sum(1 for result in self.results if result.outcome.startswith(outcomes))

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def paused(self) -> int:
        return self.count(PAUSED)

    def summary(self, name: str, dry_run: bool = False) -> str:
        parts = [
            f"{self.count(SUCCEEDED)} succeeded",
            f"{self.count(ALREADY_DONE)} already done",
            f"{self.count(DUPLICATE)} duplicates",
            f"{self.failed} failed",
        ]
        if dry_run:
            parts.insert(0, f"{self.count(WOULD_SEND)} would be sent")
        if self.paused:
            parts.append(f"{self.paused} paused (outbound traffic is paused)")
        if self.interrupted:
            parts.append(f"{self.count(NOT_RUN)} not run (interrupted)")
        mode = f", {self.processes} processes" if self.processes > 1 else ""
        if self.one_process_because:
            mode += f", in one process ({self.one_process_because})"
        mode += " (dry run: nothing sent)" if dry_run else ""
        pace = ""
        if self.slowdowns or self.throttled_retries:
            pace = (
                f"; Align asked to slow down: slowed down {self.slowdowns} times, "
                f"{self.throttled_retries} rows tried again"
            )
        return (
            f"{name}: {len(self.results)} rows: {', '.join(parts)} "
            f"in {self.elapsed:.1f} s{mode}{pace}"
        )
