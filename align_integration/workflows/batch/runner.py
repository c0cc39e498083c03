"""Running a batch action over many cases: the engine behind the ``align_*`` batch commands.

- Rows are checked and sent by a :class:`~align_integration.workflows.batch.actions.CaseAction`;
  each row is its own try/except, so one bad row never stops the others.  Before any row
  is sent, every row's case is found in bulk (``CaseAdapter.get_cases``) and the rows are
  checked in bulk where the action can (``CaseAction.check_many``): rows settled there
  (unknown, the same case twice, done before) are reported at once.
- :func:`threads_for` ``concurrency`` worker threads (each with its own HTTP session and
  database connection, closed when the thread ends) work on rows, spread over
  ``processes`` forked processes (``workflows.batch.processes``); at most ``concurrency``
  requests are in flight (a request holds its place only while in flight), and how many
  adapts to the service (``workflows.batch.pacing``): a 429, a 503 or a ``Retry-After``
  halves it, success grows it back to ``concurrency``.  ``rate`` (``--rate``) is an
  optional ceiling of requests started per second; there is none by default.
- A throttled row waits as the service asked and is tried again within the run, with the
  same ``RemoteOperation`` and idempotency key (the service never acts twice).  Its failed
  attempt is on the timeline with the background retry it scheduled, which a later
  success in the run makes moot.
- Duplicates are processed once: the same reference twice, or two references of one case.
- While outbound traffic is paused (switch ``align-outbound-paused``) a row that would
  send is reported ``paused``: nothing is sent, no attempt is spent, and the command exits
  non-zero; running it again once the switch is off sends those rows.
- Ctrl-C (SIGINT) stops taking new rows; rows in flight finish, the rest are reported as
  not run, and :attr:`BatchReport.interrupted` is set.  A second Ctrl-C stops at once.
  Re-running the same input resumes: rows done before are skipped as already done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from align_integration.adapters import get_adapter
from align_integration.client.service import AlignServiceClient
from align_integration.outbound import PAUSED_MESSAGE, OutboundPaused, outbound_paused
from align_integration.workflows.batch.actions import (
    DUPLICATE,
    FAILED,
    NOT_RUN,
    PAUSED,
    WOULD_SEND,
    CaseAction,
    Plan,
    RowOutcome,
    upload_case_assets,
)
from align_integration.workflows.batch.pacing import (
    THROTTLE_RETRIES,
    AimdLimit,
    InFlightGate,
    RateLimiter,
    ThrottleWatch,
    batch_client,
    throttle_wait,
)
from align_integration.workflows.batch.processes import (
    ProcessPool,
    cannot_fork_reason,
)
from align_integration.workflows.batch.report import BatchReport, RowResult
from align_integration.workflows.batch.rows import InputRow
from align_integration.workflows.batch.worklist import RowQueue, drop_broken_connections

logger = logging.getLogger("align_integration.batch")

DEFAULT_CONCURRENCY = 4
__all__ = [
    "DEFAULT_CONCURRENCY",
    "AimdLimit",
    "BatchReport",
    "BatchRunner",
    "RateLimiter",
    "RowResult",
    "batch_client",
    "process_row",
    "upload_case_assets",
]


@dataclass
class Pacing:
    """What paces a batch's requests: the in-flight gate and the optional rate ceiling."""

    gate: InFlightGate
    rate: RateLimiter


def threads_for(concurrency: int) -> int:
    """Threads working on rows for ``concurrency`` requests in flight: half as many again,
    so that rows doing their database work (claim, outcome, timeline) do not keep a place
    of the requests in flight empty.  One for one request at a time."""
    return concurrency + concurrency // 2 if concurrency > 1 else 1


class _CaseRegister:
    """Which input row first claimed each case (threads share it).  A row tried again
    after a throttle is still the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[Any, tuple[int, int | None]] = {}

    def claim(self, case_pk: Any, index: int, line: int | None) -> tuple[bool, int | None]:
        with self._lock:
            first = self._first.setdefault(case_pk, (index, line))
            return first[0] == index, first[1]


def resolve_row(row: InputRow, index: int, register: _CaseRegister, case: Any = None) -> Any:
    """The row's case (``case``: found already), or the outcome that settles the row: not
    found, or a duplicate."""
    if case is None:
        try:
            case = get_adapter().get_case(row.case_ref)
        except LookupError as problem:
            return RowOutcome(FAILED, 404, str(problem))
    first, line = register.claim(case.pk, index, row.line)
    if not first:
        where = f"line {line}" if line is not None else "an earlier --case"
        return RowOutcome(DUPLICATE, None, f"Same case as {where}; processed once.")
    return case


def process_row(
    action: CaseAction,
    row: InputRow,
    *,
    index: int,
    user: Any,
    client: AlignServiceClient,
    dry_run: bool,
    pacing: Pacing,
    stop: threading.Event,
    register: _CaseRegister,
    case: Any = None,
    plan: Plan | None = None,
) -> RowOutcome:
    """Check and send one row (``case``: its case, when resolved and registered already;
    ``plan``: what its check found, when checked already).  Raises only ``KeyboardInterrupt``."""
    if case is None:
        resolved = resolve_row(row, index, register)
        if isinstance(resolved, RowOutcome):
            return resolved
        case = resolved
    if plan is None:
        plan = action.check(case, row.comment, dry_run=dry_run)
    if plan.outcome is not None:
        return plan.outcome
    if dry_run:
        return RowOutcome(WOULD_SEND, None, action.would_send)
    if outbound_paused():
        return RowOutcome(PAUSED, 503, PAUSED_MESSAGE)
    if not pacing.rate.wait(stop) or not pacing.gate.admit(stop):
        return RowOutcome(NOT_RUN, None, "Interrupted before this row was sent.")
    watch = client if isinstance(client, ThrottleWatch) else None
    if watch is not None:
        watch.throttle = None
    try:
        outcome = action.send(case, row.comment, plan, user=user, client=client)
    except OutboundPaused:  # switched on while this row was on its way
        return RowOutcome(PAUSED, 503, PAUSED_MESSAGE)
    throttle = watch.throttle if watch is not None else None
    if throttle is not None and outcome.failed:
        return replace(outcome, throttled=True, retry_after=throttle.retry_after)
    return outcome


ResultCallback = Callable[[RowResult], None]


def _savepoint_if_in_transaction() -> Any:
    """A savepoint when the batch runs inside the caller's transaction, so that a bulk step
    failing on the database leaves it usable for the row-by-row fallback."""
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()


class BatchRunner:
    """Runs ``action`` over ``rows``; :meth:`run` returns the :class:`BatchReport`.

    ``concurrency``: most rows worked on at once, and the ceiling of requests in flight;
    ``adaptive=False`` keeps that many in flight whatever the service answers (throttled
    rows still wait and are tried again).  ``rate``: an optional ceiling of requests
    started per second (``None`` or 0: none).  ``processes``: how many processes share
    the rows and the concurrency (when the process may fork; else one).
    """

    def __init__(
        self,
        action: CaseAction,
        rows: list[InputRow],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate: float | None = None,
        adaptive: bool = True,
        dry_run: bool = False,
        user: Any = None,
        on_result: ResultCallback | None = None,
        handle_signals: bool = False,
        client_factory: Callable[[], AlignServiceClient] = batch_client,
        processes: int = 1,
    ) -> None:
        self.action = action
        self.rows = rows
        self.concurrency = max(1, int(concurrency))
        self.processes = max(1, min(int(processes), self.concurrency))
        self.adaptive = adaptive
        self.rate = rate
        self.pacing = self._pacing(self.concurrency, rate)
        self.dry_run = dry_run
        self.user = user
        self.on_result = on_result
        self.handle_signals = handle_signals
        self.client_factory = client_factory
        self.stop = threading.Event()
        self._register = _CaseRegister()
        self._results: dict[int, RowResult] = {}
        self._lock = threading.Lock()
        self._throttled_retries = 0
        self._cases: dict[int, Any] = {}  # cases found in bulk before the rows run
        self._plans: dict[int, Plan] = {}  # rows checked in bulk before they run

    def _pacing(self, concurrency: int, rate: float | None) -> Pacing:
        limit = AimdLimit(concurrency, factor=0.5 if self.adaptive else 1.0)
        return Pacing(InFlightGate(limit), RateLimiter(rate))

    # -- results ---------------------------------------------------------------------------
    def _store(self, index: int, row: InputRow, outcome: RowOutcome) -> None:
        self._keep(
            RowResult(
                index, row.line, row.case_ref, outcome.outcome, outcome.status, outcome.message
            )
        )

    def _keep(self, result: RowResult) -> None:
        with self._lock:
            self._results[result.index] = result
            if self.on_result is not None:
                self.on_result(result)

    def _unexpected(self, row: InputRow, error: Exception) -> RowOutcome:
        """The outcome of a row that raised: its error class only (never its text)."""
        logger.warning(
            "batch=%s line=%s outcome=error error=%s",
            self.action.name,
            row.line,
            type(error).__name__,
        )
        return RowOutcome(FAILED, None, f"Unexpected error ({type(error).__name__}).")

    def _run_one(
        self, index: int, row: InputRow, tries: int, client: AlignServiceClient
    ) -> tuple[float, int, InputRow, int] | None:
        """Work on one row; when it was throttled and may be tried again, when and how."""
        try:
            outcome = process_row(
                self.action,
                row,
                index=index,
                user=self.user,
                client=client,
                dry_run=self.dry_run,
                pacing=self.pacing,
                stop=self.stop,
                register=self._register,
                case=self._cases.get(index),
                plan=self._plans.pop(index, None),
            )
        except KeyboardInterrupt:
            self.stop.set()
            outcome = RowOutcome(NOT_RUN, None, "Interrupted during this row; re-run to finish.")
        except Exception as error:  # one bad row never stops the batch
            outcome = self._unexpected(row, error)
        again = outcome.throttled and outcome.retry_scheduled is not False
        if again and tries < THROTTLE_RETRIES and not self.stop.is_set():
            wait = throttle_wait(outcome.retry_after, tries + 1)
            with self._lock:
                self._throttled_retries += 1
            logger.info(
                "batch=%s line=%s outcome=throttled status=%s retry_in=%.1f",
                self.action.name,
                row.line,
                outcome.status,
                wait,
            )
            return (time.monotonic() + wait, index, row, tries + 1)
        self._store(index, row, outcome)
        return None

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
        slowdowns, processes = 0, 1
        try:
            threads = (
                threads_for(self.concurrency) if self.threads_allowed() and len(work) > 1 else 0
            )
            planned = threads and self.processes > 1 and len(work) > self.processes
            one_process_because = cannot_fork_reason() if planned else ""
            if one_process_because:
                logger.warning(
                    "batch=%s processes=1 planned=%d why=%r",
                    self.action.name,
                    self.processes,
                    one_process_because,
                )
            ready = self._prepare(work)
            if self.stop.is_set():  # Ctrl-C while preparing: the rows left are not run
                ready = []
            if planned and not one_process_because:
                slowdowns, processes = self._run_in_processes(ready)
            elif ready:
                self._run_rows(RowQueue(ready), threads)
                slowdowns = self.pacing.gate.slowdowns
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
            slowdowns=slowdowns,
            throttled_retries=self._throttled_retries,
            processes=processes,
            one_process_because=one_process_because,
        )

    def _prepare(self, work: list[tuple[int, InputRow]]) -> list[tuple[int, InputRow]]:
        """Find every row's case in bulk (``CaseAdapter.get_cases``) and check the rows in
        bulk where the action can; the rows left to send.  Rows settled here (not found, the
        same case twice, done before) are reported at once.  Each row is looked up on its
        own when the bulk lookup fails."""
        try:
            with _savepoint_if_in_transaction():
                cases = get_adapter().get_cases([row.case_ref for _, row in work])
        except Exception as error:  # each row is looked up on its own instead
            logger.warning(
                "batch=%s bulk_lookup=failed error=%s", self.action.name, type(error).__name__
            )
            cases = {}
        resolved = []
        for index, row in work:
            try:
                case = resolve_row(row, index, self._register, cases.get(row.case_ref))
            except Exception as error:  # the adapter's lookup broke on this row only
                case = self._unexpected(row, error)
            if isinstance(case, RowOutcome):
                self._store(index, row, case)
            else:
                self._cases[index] = case
                resolved.append((index, row))
        return self._check_in_bulk(resolved)

    def _run_in_processes(self, resolved: list[tuple[int, InputRow]]) -> tuple[int, int]:
        """Share the prepared rows out to forked processes; returns how often they slowed
        down, and how many processes ran."""
        shares = [resolved[n :: self.processes] for n in range(self.processes)]
        shares = [share for share in shares if share]
        if not shares:  # every row settled here (all done before, say)
            return 0, 1
        logger.info("batch=%s processes=%d rows=%d", self.action.name, len(shares), len(resolved))
        pool = ProcessPool(self._work_on_share(len(shares)), self._keep)
        pool.run(shares, self.stop)
        self._throttled_retries += pool.throttled_retries
        return pool.slowdowns, len(shares)

    def _check_in_bulk(self, rows: list[tuple[int, InputRow]]) -> list[tuple[int, InputRow]]:
        """Check ``rows`` in bulk where the action can; the rows left to send.  Rows the
        check settles (already done) are reported here."""
        try:
            with _savepoint_if_in_transaction():
                plans = self.action.check_many(
                    [(self._cases[index], row.comment) for index, row in rows],
                    dry_run=self.dry_run,
                )
        except Exception as error:  # each row is checked on its own instead
            logger.warning(
                "batch=%s bulk_check=failed error=%s", self.action.name, type(error).__name__
            )
            return rows
        if plans is None:
            return rows
        left = []
        for (index, row), plan in zip(rows, plans, strict=True):
            if plan.outcome is not None:
                self._store(index, row, plan.outcome)
            else:
                self._plans[index] = plan
                left.append((index, row))
        return left

    def _work_on_share(self, processes: int) -> Any:
        """What a forked process does with its share of the rows."""
        concurrency = max(1, self.concurrency // processes)
        rate = self.rate / processes if self.rate else None

        def work(
            share: list[tuple[int, InputRow]], send: Callable[[RowResult], None], stop: Any
        ) -> tuple[int, int]:
            self.stop = stop
            self.on_result = send
            self._results = {}
            self._throttled_retries = 0
            self.pacing = self._pacing(concurrency, rate)
            self._run_rows(RowQueue(share), threads_for(concurrency) if len(share) > 1 else 0)
            return self.pacing.gate.slowdowns, self._throttled_retries

        return work

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

    def _work_through(self, rows: RowQueue, *, own_connections: bool) -> None:
        client = cast(AlignServiceClient, ThrottleWatch(self.client_factory(), self.pacing.gate))
        try:
            while (item := rows.take(self.stop)) is not None:
                if own_connections:
                    drop_broken_connections()
                retry = None
                try:
                    retry = self._run_one(*item, client)
                finally:
                    rows.done(retry)
        finally:
            client.close()
            if own_connections:
                connections.close_all()  # this thread's connections only

    def _run_rows(self, rows: RowQueue, threads: int) -> None:
        """Work through ``rows`` in this thread (``threads`` 0) or in worker threads."""
        if not threads:
            self._work_through(rows, own_connections=False)
            return
        workers = [
            threading.Thread(
                target=self._work_through,
                kwargs={"rows": rows, "own_connections": True},
                name=f"align-batch-{n}",
                daemon=True,
            )
            for n in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.1)  # short joins let the main thread take Ctrl-C

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
