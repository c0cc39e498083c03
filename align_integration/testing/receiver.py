"""A stand-in for the host's inbound endpoints: a tiny HTTP server that records every POST.

Useful to watch what the sandbox sends (signed callbacks, scan notifications) without a
Django live server, e.g. in the sandbox's own tests or a script::

    with CallbackReceiver() as receiver:
        sandbox.callback_url = receiver.url + "/align/callbacks/"
        ...
        [delivery] = receiver.wait(1)
        delivery.json()
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from werkzeug.wrappers import Request, Response

from .sandbox.serving import SandboxServer, make_server


@dataclass
class Delivery:
    """One POST the receiver got: its path (with query), headers (lower-case names) and body."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver:
    """Records every POST and answers ``status`` (changeable while it runs)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, status: int = 200) -> None:
        self.host = host
        self.port = port
        self.status = status
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        self._server: SandboxServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        path = environ.get("RAW_URI") or request.full_path.rstrip("?")
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self.lock:
            self.deliveries.append(Delivery(path, headers, request.get_data()))
        return Response(b"", self.status)(environ, start_response)

    def start(self) -> CallbackReceiver:
        if self._server is None:
            self._server = make_server(self.host, self.port, self)
            self.port = self._server.port
            thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="align-callback-receiver",
                daemon=True,
            )
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The deliveries once there are at least ``count``; ``AssertionError`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries)}")
            time.sleep(0.01)
