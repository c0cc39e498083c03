"""HTTP plumbing of the sandbox: routing, request recording, fault injection, streaming.

One :class:`SandboxRequestHandler` serves every request: it reads the body, finds the route
(and so the call name), records the request, applies a staged fault, runs the vendor
handler, and writes the answer — streaming files from disk in chunks. Nothing a handler
raises can kill the server thread: it becomes a 500 with ``{"errors": [...]}``.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .control import control_routes
from .wire import ApiError, Headers, RecordedRequest, Reply, Request

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger("align_integration.sandbox")

Handler = Callable[[Request, dict[str, str]], Reply]
CONTROL = "control"
UNKNOWN = "unknown"
MAX_BODY = 32 * 1024 * 1024
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Route:
    """One call of a protocol: its name, method, path pattern and handler."""

    call: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _route(call: str, method: str, path: str, handler: Handler) -> Route:
    regex = re.sub(
        r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
    )
    return Route(call, method, re.compile(f"^{regex}$"), handler)


def build_routes(sandbox: Sandbox) -> list[Route]:
    """The route table of both vendors and of the control endpoints, first match wins."""
    align, itero = sandbox.align, sandbox.itero
    v1 = "/api/third-party/v1"
    routes = [
        _route("token", "POST", "/auth/token", align.token),
        _route("create_patient", "POST", "/patients", align.create_patient),
        _route("find_patients", "GET", "/patients", align.find_patients),
        _route("create_order", "POST", "/orders", align.create_order),
        _route("find_orders", "GET", "/orders", align.find_orders),
        _route("upload_assets", "POST", "/assets/upload", align.upload_assets),
        _route("clincheck_accept", "PUT", "/orders/{case_id}/accept", align.clincheck_accept),
        _route("clincheck_revise", "PUT", "/orders/{case_id}/modify", align.clincheck_revise),
        _route("itero_login", "GET", "/itero/login", itero.auth.login),
        _route("itero_token", "POST", "/oauth/token", itero.auth.token),
        _route("itero_revoke", "POST", "/oauth/revoke", itero.auth.revoke),
        _route("discovery", "GET", "/api/v2/discovery", itero.discovery),
        _route("accounts", "GET", f"{v1}/accounts", itero.list_accounts),
        _route("pair", "POST", f"{v1}/pair", itero.pair),
        _route("unpair", "POST", f"{v1}/unpair", itero.unpair),
        _route("orders", "GET", f"{v1}/orders/lab", itero.list_orders),
        _route("order", "GET", f"{v1}/orders/{{rx_id}}", itero.get_order),
        _route("download", "GET", f"{v1}/orders/{{rx_id}}/download/{{asset_type}}", itero.download),
        _route("return_scan", "POST", f"{v1}/orders/{{rx_id}}/return", itero.return_scan),
    ]
    routes += [
        _route(CONTROL, method, path, handler) for method, path, handler in control_routes(sandbox)
    ]
    return routes


def match(routes: list[Route], method: str, path: str) -> tuple[Route | None, dict[str, str], str]:
    """The route for ``method`` and ``path``, its path parameters, and the call name.

    A path known under another method gives no route but that path's call name (a 405).
    """
    path_call = UNKNOWN
    for route in routes:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return (
                route,
                {key: unquote(value) for key, value in found.groupdict().items()},
                route.call,
            )
        if path_call == UNKNOWN:
            path_call = route.call
    return None, {}, path_call


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its sandbox."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, SandboxRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called from the except clause of socketserver: clients hanging up land here.
        logger.debug("connection error from %s", client_address, exc_info=True)  # noqa: LOG014


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Serves one connection of the sandbox (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients wait
    # for the delayed ACK (~40 ms) on every call.
    disable_nagle_algorithm = True
    server: SandboxServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own access log: requests are logged as key=value lines instead."""

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        started = time.monotonic()
        target = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as err:
            self.close_connection = True
            self._write(Reply.of_errors(err.status, str(err)))
            return
        request = Request.parse(
            self.command, target.path, target.query, Headers(self.headers.items()), body
        )
        route, params, call = match(sandbox.routes, self.command, target.path)
        if call == CONTROL:
            reply = (
                self._invoke(route, request, params)
                if route
                else Reply.of_errors(405, "method not allowed")
            )
            self._write(reply)
            logger.debug(
                "call=control method=%s path=%s status=%s", self.command, target.path, reply.status
            )
            return
        record = RecordedRequest(
            call=call,
            method=self.command,
            path=target.path,
            query=request.query,
            headers=request.headers,
            body=body,
            json=request.json if request.json_ok else None,
            form=request.form,
            idempotency_key=request.idempotency_key,
            at=time.time(),
        )
        sandbox.record(record)
        refused = sandbox.capacity.enter()
        if refused is not None:  # over the number of requests in flight the sandbox takes
            reply = refused.reply()
            record.status, record.error = reply.status, "over capacity (injected fault)"
            self._write(reply)
            outcome = str(reply.status)
        else:
            try:
                outcome = self._answer(sandbox, route, call, request, params, record)
            finally:
                sandbox.capacity.leave()
        logger.info(
            "call=%s method=%s path=%s status=%s duration_ms=%d",
            call,
            self.command,
            target.path,
            outcome,
            (time.monotonic() - started) * 1000,
        )

    def _answer(
        self,
        sandbox: Sandbox,
        route: Route | None,
        call: str,
        request: Request,
        params: dict[str, str],
        record: RecordedRequest,
    ) -> str:
        """Apply the fault, act and answer; returns the status (or how the answer was cut short)."""
        if route is None:
            reply = (
                Reply.of_errors(405, "method not allowed")
                if call != UNKNOWN
                else Reply.of_errors(404, "not found")
            )
            record.status = reply.status
            self._write(reply)
            return str(reply.status)
        fault = sandbox.faults_book.take(call)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                reply = fault.reply()
                record.status, record.error = reply.status, "injected fault"
                self._write(reply)
                return str(reply.status)
            if fault.drop == "before":
                record.error = "dropped before acting (injected fault)"
                self._drop()
                return "dropped_before"
        reply = self._invoke(route, request, params)
        try:
            if fault is not None and fault.drop == "after":
                record.error = "dropped after acting (injected fault)"
                self._drop()
                return "dropped_after"
            record.status = reply.status
            if fault is not None and fault.drop == "partial":
                record.error = "body cut short (injected fault)"
                self._write(reply, partial=True)
                self._drop()
                return f"{reply.status}_partial"
            self._write(reply)
            return str(reply.status)
        finally:
            if reply.stream is not None:
                reply.stream.close()

    def _invoke(self, route: Route | None, request: Request, params: dict[str, str]) -> Reply:
        assert route is not None
        try:
            return route.handler(request, params)
        except ApiError as err:
            return err.reply()
        except Exception:
            # The traceback names code, not request data; bodies are never logged.
            logger.exception(
                "call=%s method=%s path=%s error=unhandled",
                route.call,
                request.method,
                request.path,
            )
            return Reply.of_errors(500, "internal sandbox error")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as err:
            raise _BodyError(400, "invalid Content-Length") from err
        if length < 0:
            raise _BodyError(400, "invalid Content-Length")
        if length > MAX_BODY:
            raise _BodyError(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            except ValueError as err:
                raise _BodyError(400, "invalid chunked body") from err
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _BodyError(413, "request body too large")
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _write(self, reply: Reply, *, partial: bool = False) -> None:
        """Send ``reply``; with ``partial`` only half its body, under the full Content-Length."""
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(reply.content_length))
            if self.close_connection or partial:
                self.send_header("Connection", "close")
            self.end_headers()
            limit = reply.content_length // 2 if partial else reply.content_length
            if reply.stream is None:
                self.wfile.write(reply.body[:limit])
                return
            while limit > 0:
                chunk = reply.stream.read(min(CHUNK, limit))
                if not chunk:
                    break
                self.wfile.write(chunk)
                limit -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing to answer

    def _drop(self) -> None:
        """Close the connection now, whatever was (not) sent."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
