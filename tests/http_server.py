"""A scripted HTTP/1.1 server on 127.0.0.1 for testing the clients through the real adapter.

Each request is recorded, then answered by the next action queued for its method and
path (``server.on("POST", "/orders", drop(), answer(200, {...}))``), else by the path's
default.  Actions can answer, drop the connection after reading the request, answer late,
or stream a body until the client stops reading.  ``responses`` replaces the adapter's
``send``, so it cannot show what urllib3's retries do; this server can.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Action = Callable[["Handler"], None]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Streamed:
    """What a streaming answer managed to send before the client went away."""

    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    cut_by_client: bool = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.server.record(Seen(self.command, path, dict(self.headers.items()), body))
        self.server.next_action(self.command, path)(self)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def write_answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def answer(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Action:
    """Answer with ``body`` as JSON (or ``raw`` bytes as they are)."""
    payload = raw if raw is not None else json.dumps({} if body is None else body).encode()
    content_type = {"Content-Type": "application/json"} if raw is None else {}

    def act(handler: Handler) -> None:
        handler.write_answer(status, payload, {**content_type, **(headers or {})})

    return act


def drop() -> Action:
    """Read the request, then close the connection without a word (a lost answer)."""

    def act(handler: Handler) -> None:
        handler.close_connection = True

    return act


def late(seconds: float, then: Action) -> Action:
    """Answer only after ``seconds`` (past the client's read timeout, it has given up)."""

    def act(handler: Handler) -> None:
        time.sleep(seconds)
        try:
            then(handler)
        except OSError:
            handler.close_connection = True

    return act


def stream(
    record: Streamed,
    *,
    status: int = 200,
    declared_length: int | None = None,
    cap: int = 256 * 1024 * 1024,
) -> Action:
    """Send a body of ``cap`` bytes (``Content-Length`` as declared, else none) in chunks,
    counting what went out before the client closed the connection."""
    chunk = b"[" + b"1," * 32 * 1024 + b"1]"

    def act(handler: Handler) -> None:
        handler.close_connection = True
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if declared_length is not None:
            handler.send_header("Content-Length", str(declared_length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            while record.sent < cap:
                handler.wfile.write(chunk)
                record.sent += len(chunk)
            handler.wfile.flush()
        except OSError:
            record.cut_by_client = True
        finally:
            record.done.set()

    return act


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.script: dict[tuple[str, str], deque[Action]] = defaultdict(deque)
        self.defaults: dict[tuple[str, str], Callable[[], Action]] = {}
        self.tokens_issued = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is what some tests are about

    def on(self, method: str, path: str, *actions: Action) -> None:
        with self.lock:
            self.script[(method, path)].extend(actions)

    def default(self, method: str, path: str, make: Callable[[], Action]) -> None:
        self.defaults[(method, path)] = make

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def next_action(self, method: str, path: str) -> Action:
        with self.lock:
            queued = self.script[(method, path)]
            if queued:
                return queued.popleft()
        make = self.defaults.get((method, path))
        return make() if make else answer(200, {})

    def requests(self, method: str, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if (seen.method, seen.path) == (method, path)]

    def issue_token(self) -> Action:
        with self.lock:
            self.tokens_issued += 1
            number = self.tokens_issued
        return answer(200, {"access_token": f"tok-{number}", "expires_in": 3600})


@contextmanager
def running_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
