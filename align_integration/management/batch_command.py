"""The shared shape of the batch commands (``align_clincheck_accept`` and friends).

Options, input reading, progress on a terminal, per-row output by verbosity, the report,
the summary line and the exit code live here; what happens to one case lives in
``workflows.batch.actions``, and running many rows in ``workflows.batch``.

Exit codes: 0 when no row failed, 1 when any row failed, 2 when the input cannot be used,
3 when rows were paused (outbound traffic paused by the switch ``align-outbound-paused``;
nothing failed), 130 when interrupted (Ctrl-C; in-flight rows finish and the report is
written first).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from align_integration.workflows.batch.actions import FAILED, NOT_RUN, PAUSED, CaseAction
from align_integration.workflows.batch.processes import (
    ROWS_IN_FLIGHT_PER_PROCESS,
    automatic_processes,
)
from align_integration.workflows.batch.report import BatchReport, RowResult
from align_integration.workflows.batch.rows import (
    COMMENT_COLUMN,
    BatchInputError,
    InputRow,
    command_line_rows,
    read_csv_rows,
    write_report,
)
from align_integration.workflows.batch.runner import DEFAULT_CONCURRENCY, BatchRunner

EXIT_FAILED_ROWS = 1
EXIT_BAD_INPUT = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130


class Progress:
    """One self-rewriting status line on a terminal (nothing when not a TTY)."""

    def __init__(self, stream: TextIO, total: int, label: str) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.enabled = bool(getattr(stream, "isatty", lambda: False)()) and total > 0
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def advance(self, result: RowResult) -> None:
        self.done += 1
        self.failed += result.outcome == FAILED
        now = time.monotonic()
        if self.enabled and (now - self._shown >= 0.2 or self.done == self.total):
            self._shown = now
            elapsed = max(now - self.started, 1e-6)
            speed = self.done / elapsed
            eta = (self.total - self.done) / speed if speed else 0
            self.stream.write(
                f"\r{self.label}: {self.done}/{self.total} rows, {self.failed} failed, "
                f"{speed:.1f} rows/s, about {eta:.0f} s left\x1b[K"
            )
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class BatchCommand(BaseCommand):
    """Subclasses set :attr:`action_class` (and ``help``)."""

    action_class: ClassVar[type[CaseAction]]

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--csv",
            metavar="PATH",
            help="CSV file with a case_id column (header names; other columns are ignored).",
        )
        source.add_argument(
            "--case",
            metavar="CASE_REF",
            action="append",
            dest="cases",
            help="A case reference, as CaseAdapter.get_case resolves it (repeatable).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help=(
                f"Most requests in flight at Align (default {DEFAULT_CONCURRENCY}); fewer while "
                "Align answers 429 or 503, growing back on success. Half as many again "
                "threads do the rows' database work meanwhile."
            ),
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            metavar="N",
            help=(
                "Processes sharing the rows and the concurrency (default: one per "
                f"{ROWS_IN_FLIGHT_PER_PROCESS} rows in flight, at most one per CPU). Where "
                "processes cannot be forked (no fork, or threads running), one."
            ),
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=None,
            metavar="PER_SECOND",
            help="An optional ceiling of remote actions started per second (default: none).",
        )
        parser.add_argument(
            "--fixed-concurrency",
            action="store_true",
            help=(
                "Keep --concurrency requests in flight even while Align throttles (throttled "
                "rows still wait as asked and are tried again). For a service whose capacity "
                "you know; otherwise leave the pacing to the command."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check every row and report what would happen; send nothing.",
        )
        parser.add_argument(
            "--report", metavar="PATH", help="Write one CSV row per input row to PATH."
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="The user the case timelines name as acting (default: none).",
        )
        if self.action_class.needs_comment:
            parser.add_argument(
                "--comment",
                default="",
                help="The revision comment for --case (with --csv: as --default-comment).",
            )
            parser.add_argument(
                "--comment-column",
                default=COMMENT_COLUMN,
                metavar="NAME",
                help=f"The CSV column holding each row's comment (default {COMMENT_COLUMN!r}).",
            )
            parser.add_argument(
                "--default-comment",
                default="",
                metavar="TEXT",
                help="The comment of CSV rows whose comment cell is empty (without it, such "
                'a row fails). The old script sent "Revision Requested.".',
            )

    # -- input -----------------------------------------------------------------------------
    def read_rows(self, options: dict[str, Any]) -> list[InputRow]:
        comment = options.get("comment") or ""
        if options["csv"]:
            return read_csv_rows(
                options["csv"],
                with_comment=self.action_class.needs_comment,
                default_comment=options.get("default_comment") or comment,
                comment_column=options.get("comment_column") or COMMENT_COLUMN,
            )
        if self.action_class.needs_comment and not comment.strip():
            raise BatchInputError("--case needs --comment (the revision request's text)")
        return command_line_rows(options["cases"], comment)

    def acting_user(self, username: str | None) -> Any:
        if not username:
            return None
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist:
            raise CommandError(f"no user {username!r}", returncode=EXIT_BAD_INPUT) from None

    # -- output ----------------------------------------------------------------------------
    def show(self, result: RowResult) -> None:
        where = f"line {result.line}" if result.line is not None else "case"
        status = f" [{result.status}]" if result.status is not None else ""
        text = f"{where} {result.case_ref}: {result.outcome}{status} {result.message}".rstrip()
        if result.outcome in (FAILED, NOT_RUN, PAUSED):
            if self.verbosity >= 1:
                self.stderr.write(text)
        elif self.verbosity >= 2:
            self.stdout.write(text)

    # -- the command -----------------------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1", returncode=EXIT_BAD_INPUT)
        if options["processes"] is not None and options["processes"] < 1:
            raise CommandError("--processes must be at least 1", returncode=EXIT_BAD_INPUT)
        if options["rate"] is not None and options["rate"] < 0:
            raise CommandError("--rate must not be negative", returncode=EXIT_BAD_INPUT)
        try:
            rows = self.read_rows(options)
        except BatchInputError as error:
            raise CommandError(str(error), returncode=EXIT_BAD_INPUT) from None
        user = self.acting_user(options["user"])
        action = self.action_class()
        # The raw stream: the progress line is redrawn in place, never styled.
        progress = Progress(self.stderr._out, len(rows), action.name)  # type: ignore[arg-type]

        def on_result(result: RowResult) -> None:
            if progress.enabled and self.verbosity >= 2:
                progress.stream.write("\r\x1b[K")
            self.show(result)
            progress.advance(result)

        runner = BatchRunner(
            action,
            rows,
            concurrency=options["concurrency"],
            rate=options["rate"],
            adaptive=not options["fixed_concurrency"],
            dry_run=options["dry_run"],
            user=user,
            on_result=on_result,
            handle_signals=True,
            processes=options["processes"]
            or automatic_processes(options["concurrency"], os.cpu_count()),
        )
        try:
            report = runner.run()
        finally:
            progress.close()
        self.finish(report, options, action)

    def finish(self, report: BatchReport, options: dict[str, Any], action: CaseAction) -> None:
        if options["report"]:
            write_report(options["report"], (result.cells for result in report.results))
        summary = report.summary(action.name, dry_run=options["dry_run"])
        if self.verbosity >= 1:
            style = self.style.ERROR if report.failed or report.paused else self.style.SUCCESS
            self.stdout.write(style(summary))
        if report.interrupted:
            raise CommandError(
                "interrupted: rows in flight finished; run the same command again to resume",
                returncode=EXIT_INTERRUPTED,
            )
        if report.failed:
            raise CommandError(
                f"{report.failed} of {len(report.results)} rows failed"
                + (f"; see {options['report']}" if options["report"] else ""),
                returncode=EXIT_FAILED_ROWS,
            )
        if report.paused:
            raise CommandError(
                f"{report.paused} of {len(report.results)} rows paused: outbound traffic is "
                "paused (switch align-outbound-paused); run the same command again once it "
                "is off",
                returncode=EXIT_PAUSED,
            )
