"""Running a batch action over many cases: the engine behind the ``align_*`` batch commands.

- Rows are checked and sent by a :class:`~align_integration.workflows.batch.actions.CaseAction`;
  each row is its own try/except, so one bad row never stops the others.
- ``concurrency`` worker threads (each with its own HTTP session and database connection,
  closed when the thread ends) share a rate limit of ``rate`` remote actions per second.
- Duplicates are processed once: the same reference twice, or two references of one case.
- While outbound traffic is paused (switch ``align-outbound-paused``) a row that would
  send is reported ``paused``: nothing is sent, no attempt is spent, and the command exits
  non-zero; running it again once the switch is off sends those rows.
- Ctrl-C (SIGINT) stops taking new rows; rows in flight finish, the rest are reported as
  not run, and :attr:`BatchReport.interrupted` is set.  A second Ctrl-C stops at once.
  Re-running the same input resumes: rows done before are skipped as already done.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

from align_integration.adapters import get_adapter
from align_integration.client.service import AlignServiceClient
from align_integration.outbound import PAUSED_MESSAGE, OutboundPaused, outbound_paused
from align_integration.workflows.batch.actions import (
    ALREADY_DONE,
    DUPLICATE,
    FAILED,
    NOT_RUN,
    PAUSED,
    SUCCEEDED,
    WOULD_SEND,
    CaseAction,
    RowOutcome,
    upload_case_assets,
)
from align_integration.workflows.batch.rows import InputRow

logger = logging.getLogger("align_integration.batch")

DEFAULT_CONCURRENCY = 4
DEFAULT_RATE = 10.0

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
    "BatchReport",
    "BatchRunner",
    "RateLimiter",
    "RowResult",
    "process_row",
    "upload_case_assets",
]


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
        mode = " (dry run: nothing sent)" if dry_run else ""
        return f"{name}: {len(self.results)} rows: {', '.join(parts)} in {self.elapsed:.1f} s{mode}"


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (``rate <= 0``: no limit)."""

    def __init__(self, rate: float) -> None:
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


class _CaseRegister:
    """Which input row first claimed each case (threads share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[Any, int | None] = {}

    def claim(self, case_pk: Any, line: int | None) -> tuple[bool, int | None]:
        with self._lock:
            if case_pk in self._first:
                return False, self._first[case_pk]
            self._first[case_pk] = line
            return True, line


def process_row(
    action: CaseAction,
    row: InputRow,
    *,
    user: Any,
    client: AlignServiceClient,
    dry_run: bool,
    limiter: RateLimiter,
    stop: threading.Event,
    register: _CaseRegister,
) -> RowOutcome:
    """Check and send one row.  Raises only ``KeyboardInterrupt``."""
    try:
        case = get_adapter().get_case(row.case_ref)
    except LookupError as problem:
        return RowOutcome(FAILED, 404, str(problem))
    first, line = register.claim(case.pk, row.line)
    if not first:
        where = f"line {line}" if line is not None else "an earlier --case"
        return RowOutcome(DUPLICATE, None, f"Same case as {where}; processed once.")
    plan = action.check(case, row.comment, dry_run=dry_run)
    if plan.outcome is not None:
        return plan.outcome
    if dry_run:
        return RowOutcome(WOULD_SEND, None, action.would_send)
    if outbound_paused():
        return RowOutcome(PAUSED, 503, PAUSED_MESSAGE)
    if not limiter.wait(stop):
        return RowOutcome(NOT_RUN, None, "Interrupted before this row was sent.")
    try:
        return action.send(case, row.comment, plan, user=user, client=client)
    except OutboundPaused:  # switched on while this row was on its way
        return RowOutcome(PAUSED, 503, PAUSED_MESSAGE)


ResultCallback = Callable[[RowResult], None]


class BatchRunner:
    """Runs ``action`` over ``rows``; :meth:`run` returns the :class:`BatchReport`."""

    def __init__(
        self,
        action: CaseAction,
        rows: list[InputRow],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate: float = DEFAULT_RATE,
        dry_run: bool = False,
        user: Any = None,
        on_result: ResultCallback | None = None,
        handle_signals: bool = False,
        client_factory: Callable[[], AlignServiceClient] = AlignServiceClient,
    ) -> None:
        self.action = action
        self.rows = rows
        self.concurrency = max(1, int(concurrency))
        self.limiter = RateLimiter(rate)
        self.dry_run = dry_run
        self.user = user
        self.on_result = on_result
        self.handle_signals = handle_signals
        self.client_factory = client_factory
        self.stop = threading.Event()
        self._register = _CaseRegister()
        self._results: dict[int, RowResult] = {}
        self._lock = threading.Lock()

    # -- results ---------------------------------------------------------------------------
    def _store(self, index: int, row: InputRow, outcome: RowOutcome) -> None:
        result = RowResult(
            index, row.line, row.case_ref, outcome.outcome, outcome.status, outcome.message
        )
        with self._lock:
            self._results[index] = result
            if self.on_result is not None:
                self.on_result(result)

    def _run_one(self, index: int, row: InputRow, client: AlignServiceClient) -> None:
        try:
            outcome = process_row(
                self.action,
                row,
                user=self.user,
                client=client,
                dry_run=self.dry_run,
                limiter=self.limiter,
                stop=self.stop,
                register=self._register,
            )
        except KeyboardInterrupt:
            self.stop.set()
            outcome = RowOutcome(NOT_RUN, None, "Interrupted during this row; re-run to finish.")
        except Exception as error:  # one bad row never stops the batch
            logger.warning(
                "batch=%s line=%s outcome=error error=%s",
                self.action.name,
                row.line,
                type(error).__name__,
            )
            outcome = RowOutcome(FAILED, None, f"Unexpected error ({type(error).__name__}).")
        self._store(index, row, outcome)

    # -- running ---------------------------------------------------------------------------
    def run(self) -> BatchReport:
        started = time.monotonic()
        work: list[tuple[int, InputRow]] = []
        seen: dict[str, int | None] = {}
        for index, row in enumerate(self.rows):
            if row.problem:
                self._store(index, row, RowOutcome(FAILED, None, row.problem))
            elif row.key in seen:
                where = f"line {seen[row.key]}" if seen[row.key] is not None else "--case"
                self._store(index, row, RowOutcome(DUPLICATE, None, f"Duplicate of {where}."))
            else:
                seen[row.key] = row.line
                work.append((index, row))
        previous = self._install_signal_handler()
        try:
            if not self.threads_allowed() or len(work) <= 1:
                self._run_inline(work)
            else:
                self._run_threads(work)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, report what we have
            self.stop.set()
        finally:
            self._restore_signal_handler(previous)
        for index, row in work:
            if index not in self._results:
                self._store(index, row, RowOutcome(NOT_RUN, None, "Interrupted before this row."))
        return BatchReport(
            results=[self._results[index] for index in sorted(self._results)],
            interrupted=self.stop.is_set(),
            elapsed=time.monotonic() - started,
        )

    def threads_allowed(self) -> bool:
        """Worker threads have connections of their own: they cannot see rows of an open
        transaction of this thread, nor an in-memory SQLite database.  Then rows run here."""
        if self.concurrency == 1:
            return False
        connection = connections[DEFAULT_DB_ALIAS]
        if connection.in_atomic_block or (
            connection.vendor == "sqlite" and connection.is_in_memory_db()  # type: ignore[attr-defined]
        ):
            logger.info("batch=%s concurrency=1 reason=shared_connection", self.action.name)
            return False
        return True

    def _run_inline(self, work: list[tuple[int, InputRow]]) -> None:
        client = self.client_factory()
        try:
            for index, row in work:
                if self.stop.is_set():
                    break
                self._run_one(index, row, client)
        finally:
            client.close()

    def _run_threads(self, work: list[tuple[int, InputRow]]) -> None:
        pending: queue.Queue[tuple[int, InputRow]] = queue.Queue()
        for item in work:
            pending.put(item)

        def worker() -> None:
            client = self.client_factory()
            try:
                while not self.stop.is_set():
                    try:
                        index, row = pending.get_nowait()
                    except queue.Empty:
                        return
                    close_old_connections()
                    self._run_one(index, row, client)
            finally:
                client.close()
                connections.close_all()  # this thread's connections only

        threads = [
            threading.Thread(target=worker, name=f"align-batch-{n}", daemon=True)
            for n in range(min(self.concurrency, len(work)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # short joins let the main thread take Ctrl-C

    # -- Ctrl-C ------------------------------------------------------------------------------
    def _install_signal_handler(self) -> Any:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return None

        def on_sigint(signum: int, frame: Any) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()
            logger.warning("batch=%s interrupted: finishing rows in flight", self.action.name)

        return signal.signal(signal.SIGINT, on_sigint)

    def _restore_signal_handler(self, previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
