"""Serving the sandbox's WSGI application over HTTP with werkzeug's threaded server.

Every request gets a thread. The listening socket is bound here first, so that a busy
port is an ``OSError`` for the caller (werkzeug's own bind would print and exit). As with
werkzeug's server, each answer closes its connection.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

logger = logging.getLogger("align_integration.sandbox")


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log: the app logs ``key=value`` lines instead."""

    # Headers and body go out in separate writes; with Nagle on, the client would wait for
    # the delayed ACK (~40 ms) on every call.
    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("server %s: %s", type, message % args if args else message)


class SandboxServer(ThreadedWSGIServer):
    """werkzeug's threaded server that does not wait for open downloads when closing."""

    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called from the except clause of socketserver: clients hanging up land here.
        logger.debug("connection error from %s", client_address, exc_info=True)  # noqa: LOG014


def make_server(host: str, port: int, app: Any) -> SandboxServer:
    """A server for ``app`` listening on ``host:port`` (``0``: a free port); ``OSError`` when
    the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.create_server((host, port), family=family)
    try:
        return SandboxServer(host, port, app, handler=QuietRequestHandler, fd=listening.fileno())
    finally:
        listening.close()  # the server keeps its own duplicate of the socket
