"""The :class:`Sandbox`: one local HTTP server standing in for both vendors.

It serves the Align integration service (protocols/align-service.md) and the iTero lab API
(protocols/itero-lab-api.md) on one port, records every request, lets tests stage faults,
and calls the host back (signed Align callbacks, iTero scan notifications) from background
threads. Nothing in the host project imports it except tests and the pytest plugin.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .align_service import AlignService, EventFactory
from .callbacks import Outbox, new_callback_secret, signed_event
from .faults import Capacity, Fault, FaultBook
from .handler import Route, SandboxServer, build_routes
from .itero import IteroLab
from .wire import RecordedRequest

logger = logging.getLogger("align_integration.sandbox")


class Sandbox:
    """A stand-in for the Align integration service and the iTero lab API.

    ``port=0`` binds a free port; :attr:`url` tells which. ``callback_secret`` defaults to a
    fresh ``whsec_`` secret, readable as the attribute of the same name. Configuration
    attributes (``client_id``, ``callback_url``, ``auto_callbacks``, ``callback_delay``…) may be
    changed while the sandbox runs.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",  # noqa: S107 - a sandbox's well-known default
        token_ttl: int = 3600,
        callback_url: str | None = None,
        callback_secret: str | None = None,
        auto_callbacks: bool = True,
        callback_delay: float = 0.2,
        itero_client_id: str = "itero-client",
        itero_client_secret: str = "itero-secret",  # noqa: S107
        *,
        public_url: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.callback_url = callback_url
        self.callback_secret = callback_secret or new_callback_secret()
        self.auto_callbacks = auto_callbacks
        self.callback_delay = callback_delay
        self.public_url = public_url
        self.faults_book = FaultBook()
        self.capacity = Capacity()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._changed = threading.Condition(self._requests_lock)
        self.outbox = Outbox(self.record, self.faults_book)
        self.align = AlignService(self)
        self.itero = IteroLab(self, itero_client_id, itero_client_secret)
        self.routes: list[Route] = build_routes(self)
        self._generation = 0
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._scratch: Path | None = None

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._server = SandboxServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="align-sandbox",
            daemon=True,
        )
        self._thread.start()
        logger.info("sandbox started url=%s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, forget pending callbacks, remove generated archives."""
        server, self._server = self._server, None
        self._generation += 1
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        logger.info("sandbox stopped")

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server, no trailing slash."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL Discovery advertises: ``public_url`` if set (behind Docker), else :attr:`url`."""
        return (self.public_url or self.url).rstrip("/")

    def scratch_dir(self) -> Path:
        """The folder generated archives are written to, made on first use."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="align-sandbox-"))
        return self._scratch

    def reset(self) -> None:
        """Forget all state, faults and recorded requests; keep credentials and configuration."""
        self._generation += 1  # callbacks and notifications still pending are dropped
        self.faults_book.clear()
        self.capacity.set(None)
        with self._requests_lock:
            self._requests.clear()
        self.align.reset()
        self.itero.reset()

    # --- recorded requests ------------------------------------------------------------------------

    def record(self, recorded: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(recorded)
            self._changed.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request seen or sent, oldest first (control endpoints excluded)."""
        with self._requests_lock:
            return list(self._requests)

    def calls(self, name: str) -> list[RecordedRequest]:
        """The recorded requests of one call name."""
        return [recorded for recorded in self.requests if recorded.call == name]

    def count(self, name: str) -> int:
        return len(self.calls(name))

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until ``count`` requests of ``name`` were recorded (and, for outgoing calls,
        answered or failed); returns them, or raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(name)
            settled = [
                r for r in found if r.url is None or r.status is not None or r.error is not None
            ]
            if len(settled) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(settled)} of {count} {name!r} requests after {timeout}s")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no callback or notification is pending; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._workers_lock:
                workers = list(self._workers)
            if not workers:
                return True
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                with self._workers_lock:
                    return not self._workers

    # --- faults and tokens ------------------------------------------------------------------------

    def inject_fault(
        self,
        call: str,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        drop: str | None = None,
        times: int | None = 1,
        body: Any = None,
        probability: float = 1.0,
    ) -> Fault:
        """Stage a failure for the next ``times`` requests of ``call`` (``None`` = forever).

        ``status``: answer it (JSON errors, or ``body``; ``Retry-After`` if given) without
        acting. ``delay``: sleep first. ``drop``: ``"before"`` closes the connection without
        acting, ``"after"`` acts then closes, ``"partial"`` sends half the body then closes.
        ``probability``: apply it to that share of the requests only (a request it skips
        may get a later fault of the same call).
        """
        return self.faults_book.add(
            Fault(call, status, retry_after, float(delay or 0), drop, times, body, probability)
        )

    def limit_in_flight(
        self, limit: int | None, *, status: int = 429, retry_after: float | None = 1
    ) -> None:
        """Answer ``status`` (with ``Retry-After``) to vendor requests beyond ``limit`` in
        flight at once, without acting; ``None`` lifts the limit.  ``capacity.refused``
        counts the refusals."""
        self.capacity.set(limit, status, retry_after)

    def clear_faults(self) -> None:
        self.faults_book.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still staged."""
        return self.faults_book.pending()

    def expire_tokens(self) -> None:
        """Every Align token issued so far becomes invalid (the next call with it gets a 401)."""
        self.align.expire_tokens()

    # --- read-only views of state -----------------------------------------------------------------

    @property
    def patients(self) -> list[dict[str, Any]]:
        with self.align.lock:
            return copy.deepcopy(self.align.patients)

    @property
    def orders(self) -> list[dict[str, Any]]:
        with self.align.lock:
            return copy.deepcopy(self.align.orders)

    # --- calling the host back --------------------------------------------------------------------

    def send_callback(
        self,
        event_type: str,
        data: dict[str, Any],
        url: str | None = None,
        secret: str | None = None,
        webhook_id: str | None = None,
        timestamp: datetime | float | None = None,
    ) -> int:
        """Send one signed Align callback now; the status the host answered (0: none)."""
        target = url or self.callback_url
        if not target:
            raise ValueError("no callback URL: pass url= or set callback_url")
        payload, headers = signed_event(
            event_type, data, secret or self.callback_secret, webhook_id, timestamp
        )
        return self.outbox.post("callback", target, payload, headers)

    def schedule_callbacks(self, events: list[EventFactory]) -> None:
        """Send ``events`` in order after ``callback_delay``, if automatic callbacks are on."""
        if not (self.auto_callbacks and self.callback_url):
            return
        generation = self._generation

        def deliver() -> None:
            for make_event in events:
                if generation != self._generation or not self.callback_url:
                    return
                event_type, data = make_event()
                self.send_callback(event_type, data)

        self.spawn(deliver, delay=self.callback_delay)

    def spawn(self, work: Callable[[], Any], delay: float = 0.0) -> None:
        """Run ``work`` in a daemon thread after ``delay``, unless reset or stopped meanwhile."""
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
                with self._workers_lock:
                    self._workers.discard(threading.current_thread())

        worker = threading.Thread(target=run, name="align-sandbox-delivery", daemon=True)
        with self._workers_lock:
            self._workers.add(worker)
        worker.start()
