"""``manage.py align_reconcile``: drift between what the app holds and what Align holds.

Asks Align's find calls about each case (every case with Align state, or those named with
``--case``; ``--since`` keeps those whose Align state changed since) and says per case:
in step, at Align but unknown here, here but not at Align, or conflicting ids.  ``--fix``
adopts Align's ids where exactly one candidate exists; nothing is ever created or
deleted at Align.

    manage.py align_reconcile --report drift.csv
    manage.py align_reconcile --since 2025-01-01 --fix --report fixed.csv

Exit codes: 0 every case in step (after fixing), 1 drift remains, 2 the input cannot be
used, 3 some cases could not be checked (and no drift was found in the others), 130
interrupted (Ctrl-C; cases in flight finish and the report is written first).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from align_integration.management.batch_command import Progress
from align_integration.workflows.batch.actions import FAILED, NOT_RUN
from align_integration.workflows.batch.report import RowResult
from align_integration.workflows.batch.rows import write_report
from align_integration.workflows.batch.runner import DEFAULT_CONCURRENCY
from align_integration.workflows.reconcile.run import (
    DRIFT,
    IN_STEP,
    REPORT_COLUMNS,
    reconcile,
    select_rows,
)

EXIT_DRIFT = 1
EXIT_BAD_INPUT = 2
EXIT_UNCHECKED = 3
EXIT_INTERRUPTED = 130


def parse_since(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` (midnight) or an ISO 8601 date-time; without an offset, the project's
    time zone."""
    text = value.strip()
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text) if len(text) == 10 else None
        if day is None:
            raise ValueError(f"--since {value!r}: expected YYYY-MM-DD or an ISO 8601 date-time")
        moment = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = (
        "Compare the app's Align ids with Align's find calls per case; --fix adopts Align's "
        "ids where exactly one candidate exists. Exits non-zero while drift remains."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--case",
            metavar="CASE_REF",
            action="append",
            dest="cases",
            default=[],
            help="A case reference, as CaseAdapter.get_case resolves it (repeatable). "
            "Default: every case the app holds Align state for.",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Only cases whose Align state changed at or after DATE (YYYY-MM-DD or ISO).",
        )
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Adopt Align's patient and order ids where exactly one candidate exists.",
        )
        parser.add_argument("--report", metavar="PATH", help="Write one CSV row per case.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help=f"Cases checked at once (default {DEFAULT_CONCURRENCY}).",
        )

    def show(self, result: RowResult) -> None:
        status = f" [{result.status}]" if result.status is not None else ""
        text = f"case {result.case_ref}: {result.outcome}{status} {result.message}".rstrip()
        if result.outcome in (FAILED, NOT_RUN):
            if self.verbosity >= 1:
                self.stderr.write(text)
        elif result.outcome == DRIFT and self.verbosity >= 1:
            self.stdout.write(self.style.WARNING(text))
        elif result.outcome != IN_STEP or self.verbosity >= 2:
            if self.verbosity >= 1:
                self.stdout.write(text)

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1", returncode=EXIT_BAD_INPUT)
        try:
            since = parse_since(options["since"]) if options["since"] else None
        except ValueError as error:
            raise CommandError(str(error), returncode=EXIT_BAD_INPUT) from None
        rows = select_rows(options["cases"], since)
        # The raw stream: the progress line is redrawn in place, never styled.
        progress = Progress(self.stderr._out, len(rows), "align_reconcile")  # type: ignore[arg-type]

        def on_result(result: RowResult) -> None:
            if progress.enabled and self.verbosity >= 1:
                progress.stream.write("\r\x1b[K")
            self.show(result)
            progress.advance(result)

        try:
            report = reconcile(
                rows,
                fix=options["fix"],
                concurrency=options["concurrency"],
                on_result=on_result,
                handle_signals=True,
            )
        finally:
            progress.close()
        if options["report"]:
            write_report(options["report"], report.rows(), columns=REPORT_COLUMNS)
        if self.verbosity >= 1:
            style = self.style.WARNING if report.drift_remains else self.style.SUCCESS
            self.stdout.write(style(report.summary()))
        if report.batch.interrupted:
            raise CommandError(
                "interrupted: cases in flight finished; run the same command again",
                returncode=EXIT_INTERRUPTED,
            )
        where = f"; see {options['report']}" if options["report"] else ""
        if report.drift_remains:
            raise CommandError(
                f"drift remains in {report.count(DRIFT)} case(s){where}", returncode=EXIT_DRIFT
            )
        if report.unchecked:
            raise CommandError(
                f"{report.unchecked} case(s) could not be checked{where}",
                returncode=EXIT_UNCHECKED,
            )
