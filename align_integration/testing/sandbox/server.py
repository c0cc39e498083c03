"""The :class:`Sandbox`: one local HTTP server standing in for both vendors.

It serves the Align integration service (protocols/align-service.md) and the iTero lab API
(protocols/itero-lab-api.md) on one port, records every request, lets tests stage faults,
latency, an in-flight cap and drift, and calls the host back (signed Align callbacks, iTero
scan notifications) from background threads.

This module is the sandbox's composition root: it builds every part and hands each one only
what it uses (the parts name that in a small ``Protocol`` of their own, which the sandbox
satisfies), so the imports inside the package run one way, towards this module.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .align_records import AlignRecords
from .align_service import AlignService
from .app import SandboxApp
from .archives import ArchiveStore
from .background import Background
from .callbacks import CallbackSender, EventFactory
from .control import SandboxControl
from .faults import Fault, FaultBook
from .itero import IteroLab
from .itero_api import IteroApi
from .itero_auth import IteroAuth
from .outbox import Outbox
from .pacing import Pacing
from .recorder import Grouping, Recorder
from .serving import SandboxServer, make_server
from .signing import new_callback_secret
from .wire import RecordedRequest, Route

logger = logging.getLogger("align_integration.sandbox")


class Sandbox:
    """A stand-in for the Align integration service and the iTero lab API.

    ``port=0`` binds a free port; :attr:`url` tells which. ``callback_secret`` defaults to a
    fresh ``whsec_`` secret, readable as the attribute of the same name. Configuration
    attributes (``client_id``, ``callback_url``, ``auto_callbacks``, ``callback_delay``,
    ``plan_viewer_url``…) may be changed while the sandbox runs.
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
        plan_viewer_url: str | None = None,
        max_in_flight: int | None = None,
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
        self.plan_viewer_url = plan_viewer_url
        self.faults_book = FaultBook()
        self.recorder = Recorder()
        self.pacing = Pacing()
        self.background = Background()
        self.outbox = Outbox(self.recorder, self.faults_book)
        self.callbacks = CallbackSender(self, self.outbox, self.background)
        self.align = AlignService(self, AlignRecords(), self.callbacks)
        archives = ArchiveStore(self.scratch_dir, self.background)
        auth = IteroAuth(itero_client_id, itero_client_secret)
        self.itero = IteroLab(auth, archives, self.outbox, self.background)
        routes = [
            *self.align.routes(),
            *auth.routes(),
            *IteroApi(self.itero, self).routes(),
            *SandboxControl(self).routes(),
        ]
        self.app = SandboxApp(routes, self.recorder, self.faults_book, self.pacing)
        self._initial_in_flight = max_in_flight
        self.pacing.limit(max_in_flight)
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._scratch: Path | None = None

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns ``self``. ``OSError`` if it cannot bind."""
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self.app)
        self.port = self._server.port
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
        self.background.cancel_pending()
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

    @property
    def routes(self) -> list[Route]:
        """The route table (vendor calls and control endpoints); assignable, e.g. in tests."""
        return self.app.routes

    @routes.setter
    def routes(self, routes: Sequence[Route]) -> None:
        self.app.routes = routes

    def scratch_dir(self) -> Path:
        """The folder generated archives are written to, made on first use."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="align-sandbox-"))
        return self._scratch

    def reset(self) -> None:
        """Forget all state, faults, latency and recorded requests (the in-flight cap goes
        back to the constructor's); keep credentials and configuration."""
        self.background.cancel_pending()  # callbacks and notifications still pending are dropped
        self.faults_book.clear()
        self.pacing.reset()
        self.pacing.limit(self._initial_in_flight)
        self.recorder.clear()
        self.align.reset()
        self.itero.reset()

    # --- recorded requests ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request seen or sent, oldest first (control endpoints excluded)."""
        return self.recorder.requests

    def calls(self, name: str) -> list[RecordedRequest]:
        """The recorded requests of one call name."""
        return self.recorder.calls(name)

    def count(
        self,
        name: str,
        *,
        case_id: str | None = None,
        idempotency_key: str | None = None,
        rx_id: str | None = None,
        acted: bool | None = None,
    ) -> int:
        """How many requests of ``name`` were recorded, narrowed by any filter given."""
        return self.recorder.count(
            name, case_id=case_id, idempotency_key=idempotency_key, rx_id=rx_id, acted=acted
        )

    def counts(self, name: str, by: Grouping = "case", *, acted: bool = False) -> dict[str, int]:
        """Requests of ``name`` per ``"case"`` id, Idempotency-``"key"`` or ``"rx"`` id; with
        ``acted`` only those the service acted on (not replays, not refusals)."""
        return self.recorder.counts(name, by, acted=acted)

    def keys_by_case(self, name: str) -> dict[str, list[str]]:
        """Distinct Idempotency-Keys of ``name`` per case: two or more = a double attempt."""
        return self.recorder.keys_by_case(name)

    def count_summary(self, name: str) -> dict[str, Any]:
        """All the counts of one call at once (``GET /__sandbox__/counts?call=…``)."""
        return self.recorder.summary(name)

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until ``count`` requests of ``name`` were recorded (and, for outgoing calls,
        answered or failed); returns them, or raises ``TimeoutError``."""
        return self.recorder.wait_for(name, count, timeout)

    def wait_for_callbacks(
        self, count: int = 1, event_type: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` callbacks (of ``event_type``, if given) were sent and answered
        (or failed); returns those sent so far. ``TimeoutError`` when they were not."""
        deadline = time.monotonic() + timeout
        while True:
            sent = [
                r
                for r in self.recorder.calls("callback")
                if event_type is None or (isinstance(r.json, dict) and r.json["type"] == event_type)
            ]
            settled = [r for r in sent if r.status is not None or r.error is not None]
            if len(settled) >= count:
                return sent
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(settled)} of {count} callbacks after {timeout}s")
            self.recorder.wait_changed(min(0.05, max(0.0, deadline - time.monotonic())))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no callback or notification is pending; ``False`` on timeout."""
        return self.background.wait_idle(timeout)

    # --- faults, pacing and tokens ----------------------------------------------------------------

    def inject_fault(
        self,
        call: str,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        drop: str | None = None,
        times: int | None = 1,
        body: Any = None,
        *,
        rate: float = 1.0,
        seed: int | None = None,
    ) -> Fault:
        """Stage a failure for the next ``times`` requests of ``call`` (``None`` = forever).

        ``status``: answer it (JSON errors, or ``body``; ``Retry-After`` if given) without
        acting. ``delay``: sleep first. ``drop``: ``"before"`` closes the connection without
        acting, ``"after"`` acts then closes, ``"partial"`` sends half the body then closes.
        ``rate`` below 1 hits only that fraction of the requests (drawn per request, from a
        generator seeded with ``seed`` for a repeatable run); ``times`` counts the hits.
        """
        fault = Fault(call, status, retry_after, float(delay or 0), drop, times, body, rate, seed)
        return self.faults_book.add(fault)

    def clear_faults(self) -> None:
        self.faults_book.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still staged."""
        return self.faults_book.pending()

    def set_latency(self, call: str, seconds: float | None) -> None:
        """Every request of the incoming ``call`` waits ``seconds`` first (``None``: none).
        Unlike a ``delay`` fault it is never used up; it counts as time in flight."""
        self.pacing.set_latency(call, seconds)

    def limit_in_flight(
        self,
        max_in_flight: int | None,
        *,
        retry_after: float = 1,
        calls: Iterable[str] | None = None,
    ) -> None:
        """Serve at most ``max_in_flight`` requests (of ``calls``, default every incoming call)
        at once; one more is answered 429 with ``Retry-After``, without acting. ``None``: no cap.
        """
        self.pacing.limit(max_in_flight, retry_after, calls)

    @property
    def peak_in_flight(self) -> int:
        """The most requests served at once since the last reset (or cap change)."""
        return self.pacing.peak_in_flight

    def pacing_state(self) -> dict[str, Any]:
        """Latency per call, the in-flight cap, what is in flight now and the peak."""
        return self.pacing.as_dict()

    def expire_tokens(self) -> None:
        """Every Align token issued so far becomes invalid (the next call with it gets a 401)."""
        self.align.expire_tokens()

    # --- the Align side: state and drift ----------------------------------------------------------

    @property
    def patients(self) -> list[dict[str, Any]]:
        return self.align.records.snapshot()[0]

    @property
    def orders(self) -> list[dict[str, Any]]:
        return self.align.records.snapshot()[1]

    def seed_patient(self, case_id: str, **fields: Any) -> str:
        """A patient made outside the app (see :meth:`.AlignRecords.seed_patient`); its id.
        Seed twice for a case with two candidate patients."""
        return self.align.records.seed_patient(case_id, **fields)

    def seed_order(self, case_id: str, **fields: Any) -> str:
        """An order made outside the app, no callbacks (:meth:`.AlignRecords.seed_order`)."""
        return self.align.records.seed_order(case_id, **fields)

    def delete_patient(self, patient_id: str) -> None:
        """The patient disappears at Align (``KeyError`` when unknown)."""
        self.align.records.delete_patient(patient_id)

    def delete_order(self, order_id: str) -> None:
        """The order disappears at Align (``KeyError`` when unknown)."""
        self.align.records.delete_order(order_id)

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
        return self.callbacks.send(event_type, data, url, secret, webhook_id, timestamp)

    def schedule_callbacks(self, events: Sequence[EventFactory]) -> None:
        """Send ``events`` in order after ``callback_delay``, if automatic callbacks are on."""
        self.callbacks.schedule(events)
