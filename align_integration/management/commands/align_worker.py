"""``manage.py align_worker``: runs everything that is due in the background.

One pass: remote operations whose retry is due (and ones a crashed process abandoned),
stored callbacks that failed or were never processed, and the iTero connector's work when
it is configured.  ``--once`` runs one pass and exits (cron); ``--loop`` keeps going every
``--interval`` seconds until SIGTERM or SIGINT, finishing the pass in progress first.

Any number of workers may run at once, on any number of machines: each due operation is
taken by exactly one of them.

While outbound traffic is paused (waffle switch ``align-outbound-paused``) a pass sends
nothing: due operations and iTero work stay due and run on the first pass after the switch
is off; stored callbacks (inbound) are still processed.

``--retry-failed`` / ``--retry ID`` retry operations parked as failed by hand, like the
admin's "Retry now", then exit.

    manage.py align_worker --loop --interval 10
    manage.py align_worker --once -v 2
    manage.py align_worker --retry-failed --kind clincheck_accept
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection

from align_integration.models import RemoteOperation
from align_integration.outbound import OutboundPaused
from align_integration.worker import WorkerPass, retry_operations, run_worker_pass


class Command(BaseCommand):
    help = "Run due retries, stored callbacks and iTero work: once, or in a loop."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--once", action="store_true", help="Run one pass and exit.")
        mode.add_argument(
            "--loop", action="store_true", help="Run a pass every --interval seconds."
        )
        mode.add_argument(
            "--retry-failed",
            action="store_true",
            help="Retry every operation parked as failed (see --kind), then exit.",
        )
        mode.add_argument(
            "--retry",
            type=int,
            action="append",
            metavar="OPERATION_ID",
            help="Retry this operation now, whatever its schedule (repeatable), then exit.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=10.0,
            help="Seconds between passes with --loop (default 10).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=100,
            help="Most operations and callbacks handled per pass (default 100).",
        )
        parser.add_argument(
            "--kind",
            choices=[kind for kind, _ in RemoteOperation.KINDS],
            help="With --retry-failed: only operations of this kind.",
        )
        parser.add_argument("--no-itero", action="store_true", help="Skip the iTero connector.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["retry_failed"] or options["retry"]:
            self.retry(options)
            return
        if options["interval"] <= 0 or options["limit"] < 1:
            raise CommandError("--interval must be positive and --limit at least 1")
        if options["once"]:
            result = run_worker_pass(options["limit"], itero=not options["no_itero"])
            self.report(result, always=True)
            if result.errors:
                raise CommandError(f"{result.errors} step(s) failed; see the log")
            return
        self.loop(options)

    def loop(self, options: dict[str, Any]) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        if self.verbosity >= 1:
            self.stdout.write(f"align_worker: running every {options['interval']:g} s")
        passes = 0
        try:
            while not stop.is_set():
                refresh_connections()
                result = run_worker_pass(options["limit"], itero=not options["no_itero"])
                passes += 1
                self.report(result, always=self.verbosity >= 2)
                if result.operations >= options["limit"]:
                    continue  # more is due: no pause
                stop.wait(options["interval"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            refresh_connections()
        if self.verbosity >= 1:
            self.stdout.write(f"align_worker: stopped after {passes} passes")

    def retry(self, options: dict[str, Any]) -> None:
        operations = RemoteOperation.objects.exclude(state=RemoteOperation.SUCCEEDED)
        if options["retry"]:
            operations = operations.filter(pk__in=options["retry"])
        else:
            operations = operations.filter(state=RemoteOperation.FAILED)
            if options["kind"]:
                operations = operations.filter(kind=options["kind"])
        picked = list(operations.order_by("pk"))
        try:
            succeeded, failed = retry_operations(picked)
        except OutboundPaused as paused:
            raise CommandError(str(paused)) from None
        if self.verbosity >= 1:
            self.stdout.write(
                f"align_worker: retried {len(picked)} operations: "
                f"{succeeded} succeeded, {failed} failed"
            )
        if failed:
            raise CommandError(f"{failed} operations failed again; see their case timelines")

    def report(self, result: WorkerPass, *, always: bool) -> None:
        if self.verbosity >= 1 and (always or result.busy or result.errors):
            self.stdout.write(f"align_worker: {result}")


def refresh_connections() -> None:
    """Drop connections past CONN_MAX_AGE or broken, as Django does between requests (not
    inside a transaction: a caller's, e.g. a test's, must survive)."""
    if not connection.in_atomic_block:
        close_old_connections()
