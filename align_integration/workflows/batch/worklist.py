"""The rows a batch works on, shared by its threads, and the threads' database connections.

:class:`RowQueue` hands out rows to try and holds throttled rows until their time;
:func:`drop_broken_connections` keeps a thread's healthy connection across rows.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque

from django.db import connections

from align_integration.workflows.batch.rows import InputRow


def drop_broken_connections() -> None:
    """Close this thread's database connections that broke (the next query reconnects).

    Unlike ``close_old_connections`` this keeps a healthy connection whatever
    ``CONN_MAX_AGE`` says: with the default 0 that would reconnect for every row.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


class RowQueue:
    """Rows to work on, and throttled rows waiting for their time; shared by the threads.

    :meth:`take` blocks while only waiting rows are left; ``None`` when all are done.
    """

    def __init__(self, work: list[tuple[int, InputRow]]) -> None:
        self._ready: deque[tuple[int, InputRow, int]] = deque((i, r, 0) for i, r in work)
        self._later: list[tuple[float, int, InputRow, int]] = []
        self._active = 0
        self._condition = threading.Condition()

    def take(self, stop: threading.Event) -> tuple[int, InputRow, int] | None:
        with self._condition:
            while not stop.is_set():
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _, index, row, tries = heapq.heappop(self._later)
                    self._ready.appendleft((index, row, tries))  # before rows not yet tried
                if self._ready:
                    self._active += 1
                    return self._ready.popleft()
                if not self._later and not self._active:
                    return None
                wait = self._later[0][0] - now if self._later else 0.5
                self._condition.wait(timeout=min(max(wait, 0.01), 0.5))
            return None

    def done(self, retry: tuple[float, int, InputRow, int] | None = None) -> None:
        with self._condition:
            self._active -= 1
            if retry is not None:
                heapq.heappush(self._later, retry)
            self._condition.notify_all()

    def leftover(self) -> list[tuple[int, InputRow]]:
        with self._condition:
            return [(i, r) for i, r, _ in self._ready] + [(i, r) for _, i, r, _ in self._later]
