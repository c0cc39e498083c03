"""Spreading a batch over worker processes.

Each row costs the command's own Python some milliseconds (its database work, building
and reading the request), all under one interpreter lock: beyond about
:data:`ROWS_IN_FLIGHT_PER_PROCESS` rows in flight, more threads only queue for that lock,
while a second process runs on a second CPU.  So a batch run with ``--concurrency 16``
works in two processes of 8 threads each (``--processes`` sets the number).

- The parent resolves every row's case first, so a case named twice (by two references)
  is still processed once, then forks one child per share of the rows.
- Each child works through its share with its own database connections and HTTP
  session, with its share of the concurrency (and of ``--rate``), and pacing of its own:
  a throttled child slows itself down.
- Each row's result comes back to the parent as it is known (progress, output, report).
- Ctrl-C in the parent stops the children taking new rows; rows in flight finish.  A
  second Ctrl-C ends the children at once.  A child whose parent is gone (killed)
  takes no new row.  A child that dies leaves its unreported rows
  "not run": the next run of the same input resumes them.
- Processes are forked, so they exist only where ``fork`` does, and only from a process
  that runs no other thread (forking a threaded process can leave a lock held forever in
  the child).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from django.db import connections

logger = logging.getLogger("align_integration.batch")

#: Rows in flight one process handles before its interpreter lock, not the service, is
#: the limit (measured with ``benchmarks/bench_batch.py``).
ROWS_IN_FLIGHT_PER_PROCESS = 8

#: ``work(share, send, stop)`` in a child: works through ``share``, calls ``send`` with
#: each result and returns what the parent sums up (how often it slowed down, rows tried
#: again); ``stop`` is set when the parent asks to stop.
Work = Callable[[list[Any], Callable[[Any], None], threading.Event], tuple[int, int]]


def automatic_processes(concurrency: int, cpus: int | None) -> int:
    """Processes for ``concurrency`` rows in flight on a machine with ``cpus`` CPUs."""
    return max(1, min(cpus or 1, concurrency // ROWS_IN_FLIGHT_PER_PROCESS))


def cannot_fork_reason() -> str:
    """Why this process may not fork workers (for the summary and the log), or ``""``
    when it may: ``fork`` exists and no other thread runs."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return "this platform cannot fork"
    others = threading.active_count() - 1
    if others:
        return f"{others} other thread{'s' if others > 1 else ''} running; see docs, Processes"
    return ""


def _child(work: Work, share: list[Any], conn: Connection, stop_all: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    stop = threading.Event()

    def watch() -> None:  # the parent asked to stop, or is gone (killed): take no new row
        while not stop.is_set():
            if stop_all.wait(0.2) or os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, name="align-batch-stop", daemon=True).start()
    try:
        totals = work(share, lambda result: conn.send(("result", result)), stop)
        conn.send(("done", totals))
    except BaseException as error:  # reported; the parent marks the rest "not run"
        with contextlib.suppress(OSError):  # the parent may be gone
            conn.send(("failed", type(error).__name__))
    finally:
        stop.set()
        connections.close_all()
        conn.close()


class ProcessPool:
    """Runs ``work`` over ``shares`` in one forked child each; results go to ``on_result``."""

    def __init__(self, work: Work, on_result: Callable[[Any], None]) -> None:
        self.work = work
        self.on_result = on_result
        self.slowdowns = 0
        self.throttled_retries = 0

    def run(self, shares: list[list[Any]], stop: threading.Event) -> None:
        """Work through ``shares``; returns when every child ended.  ``stop`` (set by the
        parent's Ctrl-C handler) stops the children taking new rows."""
        context = multiprocessing.get_context("fork")
        stop_all = context.Event()
        connections.close_all()  # a child must not share the parent's database sockets
        children = []
        pipes: dict[Connection, Any] = {}
        for share in shares:
            receiving, sending = context.Pipe(duplex=False)
            child = context.Process(
                target=_child,
                args=(self.work, share, sending, stop_all, os.getpid()),
                daemon=True,
            )
            child.start()
            sending.close()
            children.append(child)
            pipes[receiving] = child
        try:
            while pipes:
                if stop.is_set():
                    stop_all.set()
                for ready in wait(list(pipes), timeout=0.2):
                    conn = cast(Connection, ready)
                    if not self._receive(conn):
                        conn.close()
                        del pipes[conn]
        except KeyboardInterrupt:  # a second Ctrl-C: end the children now
            for child in children:
                child.terminate()
            raise
        finally:
            for child in children:
                child.join(timeout=10)

    def _receive(self, conn: Connection) -> bool:
        """Handle one message; False once the child has said all it will say."""
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            logger.warning("batch process ended without finishing its rows")
            return False
        if kind == "result":
            self.on_result(value)
            return True
        if kind == "done":
            slowdowns, retries = value
            self.slowdowns += slowdowns
            self.throttled_retries += retries
        else:
            logger.warning("batch process stopped: error=%s", value)
        return False
