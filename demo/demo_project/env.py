"""Values the demo settings and ``demo/run.py`` must agree on (standard library only).

``run.py`` imports this module without Django, so it holds nothing but plain values read
from the environment: the ports, the sandbox URL and the callback signing secret.
"""

from __future__ import annotations

import os

#: The Standard Webhooks secret the sandbox signs its callbacks with and the demo verifies.
#: Demo only: never use a secret that is written in a repository anywhere else.
CALLBACK_SECRET = "whsec_ZGVtby1vbmx5LWNhbGxiYWNrLXNlY3JldC0xMjM0NTY="


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError(f"{name}={value!r} is not a TCP port")
    return port


def demo_port() -> int:
    """The port of the demo site (env ``DEMO_PORT``, default 8000)."""
    return _port("DEMO_PORT", 8000)


def sandbox_port() -> int:
    """The port of the Align/iTero sandbox (env ``SANDBOX_PORT``, default 8765)."""
    return _port("SANDBOX_PORT", 8765)


def demo_url() -> str:
    return f"http://127.0.0.1:{demo_port()}"


def sandbox_url() -> str:
    return f"http://127.0.0.1:{sandbox_port()}"
