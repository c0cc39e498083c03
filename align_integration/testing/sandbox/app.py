"""The sandbox as a WSGI application: routing, recording, pacing, faults, answers.

:class:`SandboxApp` routes each request with a werkzeug :class:`~werkzeug.routing.Map` (so
the route gives the call name), records it, holds it to the in-flight cap and the call's
latency, applies a staged fault, runs the vendor handler and answers. Control routes (call
``control``) skip all of that. Nothing a handler raises escapes: it becomes a 500 with
``{"errors": [...]}``. Dropping a connection needs the socket that werkzeug's server puts in
the environ (``werkzeug.socket``), see :mod:`.serving`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from .faults import Fault, retry_after_header
from .wire import ApiError, ApiRequest, RecordedRequest, Route, errors_reply

logger = logging.getLogger("align_integration.sandbox")

CONTROL = "control"
UNKNOWN = "unknown"


class RequestLog(Protocol):
    def record(self, recorded: RecordedRequest) -> None: ...

    def settled(self) -> None: ...


class FaultSource(Protocol):
    def take(self, call: str) -> Fault | None: ...


class Limits(Protocol):
    """Latency and the in-flight cap (the sandbox's :class:`~.pacing.Pacing`)."""

    @property
    def retry_after(self) -> float: ...

    def latency(self, call: str) -> float: ...

    def admit(self, call: str) -> AbstractContextManager[bool]: ...


class ConnectionDropped(ConnectionAbortedError):
    """Raised after closing the socket on purpose; werkzeug's server then writes nothing."""


def _rule(route: Route) -> Rule:
    path = route.path.replace("{", "<").replace("}", ">")
    return Rule(path, methods=[route.method], endpoint=route)


def _drop(environ: dict[str, Any]) -> None:
    """Close the connection now, whatever was (not) sent, and stop the server from answering."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionDropped("connection dropped (injected fault)")


class SandboxApp:
    """The WSGI application of the sandbox (see the module docstring)."""

    def __init__(
        self, routes: Sequence[Route], log: RequestLog, faults: FaultSource, limits: Limits
    ) -> None:
        self._log = log
        self._faults = faults
        self._limits = limits
        self.routes = list(routes)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    @routes.setter
    def routes(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)
        self._map = Map(
            [_rule(route) for route in routes], strict_slashes=False, merge_slashes=False
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.monotonic()
        request = ApiRequest(environ)
        # Match the path as sent (still percent-encoded), as the vendors' routers do.
        path = urlsplit(environ.get("RAW_URI") or request.path).path or "/"
        route, params, call = self._match(path, request.method)
        try:
            body = request.body
        except RequestEntityTooLarge:
            return errors_reply(413, "request body too large")(environ, start_response)
        if call == CONTROL:
            reply = self._invoke(route, request, params) if route else _not_allowed()
            logger.debug(
                "call=control method=%s path=%s status=%s", request.method, path, reply.status_code
            )
            return reply(environ, start_response)
        ok, parsed = request.parsed_json
        record = RecordedRequest(
            call=call,
            method=request.method,
            path=path,
            query=request.args.to_dict(flat=False),
            headers=Headers(request.headers),
            body=body,
            json=parsed if ok else None,
            form=request.form_or_none,
            idempotency_key=request.idempotency_key,
            at=time.time(),
            params=params,
        )
        self._log.record(record)
        outcome = "dropped"
        try:
            with self._limits.admit(call) as admitted:
                if admitted:
                    reply, outcome = self._answer(environ, route, call, request, params, record)
                else:
                    reply, outcome = self._over_cap(record), "429_in_flight"
        finally:
            self._log.settled()
            logger.info(
                "call=%s method=%s path=%s status=%s duration_ms=%d",
                call,
                request.method,
                path,
                outcome,
                (time.monotonic() - started) * 1000,
            )
        return reply(environ, start_response)

    def _match(self, path: str, method: str) -> tuple[Route | None, dict[str, str], str]:
        """The route, its path parameters and the call name; a path known under another
        method gives no route but that path's call name (a 405)."""
        adapter = self._map.bind("sandbox")
        try:
            route, values = adapter.match(path, method)
        except NotFound:
            return None, {}, UNKNOWN
        except MethodNotAllowed as err:
            other = sorted(err.valid_methods or [])[0]
            route, _ = adapter.match(path, other)
            return None, {}, route.call
        return route, {key: unquote(str(value)) for key, value in values.items()}, route.call

    def _over_cap(self, record: RecordedRequest) -> Response:
        record.status, record.error = 429, "over the in-flight cap (injected)"
        headers = retry_after_header(float(self._limits.retry_after))
        return errors_reply(429, "too many requests in flight", headers=headers)

    def _answer(
        self,
        environ: dict[str, Any],
        route: Route | None,
        call: str,
        request: ApiRequest,
        params: dict[str, str],
        record: RecordedRequest,
    ) -> tuple[Response, str]:
        """Wait, apply the fault, act; returns the answer and the outcome to log."""
        if route is None:
            reply = _not_allowed() if call != UNKNOWN else errors_reply(404, "not found")
            record.status = reply.status_code
            return reply, str(reply.status_code)
        latency = self._limits.latency(call)
        if latency:
            time.sleep(latency)
        fault = self._faults.take(call)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                reply = fault.reply()
                record.status, record.error = reply.status_code, "injected fault"
                return reply, str(reply.status_code)
            if fault.drop == "before":
                record.error = "dropped before acting (injected fault)"
                _drop(environ)
        reply = self._invoke(route, request, params)
        record.replayed = reply.headers.get("Idempotent-Replayed") == "true"
        record.acted = reply.status_code < 400 and not record.replayed
        if fault is not None and fault.drop == "after":
            record.error = "dropped after acting (injected fault)"
            reply.close()
            _drop(environ)
        record.status = reply.status_code
        if fault is not None and fault.drop == "partial":
            record.error = "body cut short (injected fault)"
            return _cut_short(reply, environ), f"{reply.status_code}_partial"
        return reply, str(reply.status_code)

    def _invoke(self, route: Route | None, request: ApiRequest, params: dict[str, str]) -> Response:
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
            return errors_reply(500, "internal sandbox error")


def _not_allowed() -> Response:
    return errors_reply(405, "method not allowed")


def _cut_short(reply: Response, environ: dict[str, Any]) -> Response:
    """The answer with its full Content-Length but only half its body, then a closed socket."""
    length = reply.calculate_content_length()
    if length is None:
        length = int(reply.headers.get("Content-Length", 0))
    source = reply.iter_encoded()

    def half() -> Iterator[bytes]:
        left = length // 2
        try:
            for chunk in source:
                if left <= 0:
                    break
                yield chunk[:left]
                left -= len(chunk[:left])
        finally:
            reply.close()
        _drop(environ)

    cut = Response(half(), reply.status_code, reply.headers, direct_passthrough=True)
    cut.headers["Content-Length"] = str(length)
    return cut
