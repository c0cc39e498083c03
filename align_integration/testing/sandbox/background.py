"""Background work of the sandbox: callbacks, notifications and archive builds in threads.

Each piece of work runs in a daemon thread, after an optional delay, unless the sandbox was
reset or stopped meanwhile (:meth:`Background.cancel_pending` starts a new generation: work
of an older one is dropped). :meth:`Background.wait_idle` lets a test wait for all of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("align_integration.sandbox")


class Background:
    """Spawns and tracks the sandbox's background threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes on every :meth:`cancel_pending`; work started before then is stale."""
        return self._generation

    def cancel_pending(self) -> None:
        """Work that has not started yet (or checks :attr:`generation`) is dropped."""
        self._generation += 1

    def spawn(self, work: Callable[[], Any], delay: float = 0.0) -> None:
        """Run ``work`` in a daemon thread after ``delay``, unless cancelled meanwhile."""
        generation = self._generation

        def run() -> None:
            try:
                if delay:
                    time.sleep(delay)
                if generation == self._generation:
                    work()
            except Exception:
                logger.exception("background delivery failed")
            finally:
                with self._lock:
                    self._workers.discard(threading.current_thread())

        worker = threading.Thread(target=run, name="align-sandbox-delivery", daemon=True)
        with self._lock:
            self._workers.add(worker)
        worker.start()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no background work is left; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                workers = list(self._workers)
            if not workers:
                return True
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                with self._lock:
                    return not self._workers
