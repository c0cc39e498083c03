"""Run the sandbox by hand: ``python -m align_integration.testing.sandbox --port 8765``
(or ``python -m align_integration.sandbox``, the same).

Every option falls back to an ``ALIGN_SANDBOX_*`` environment variable (``--client-id`` to
``ALIGN_SANDBOX_CLIENT_ID`` and so on). Prints one line with the URL, then serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .server import Sandbox

ENV_PREFIX = "ALIGN_SANDBOX_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_flag(name: str, default: bool) -> bool:
    value = _env(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m align_integration.sandbox",
        description="Stand-in for the Align integration service and the iTero lab API.",
        epilog=f"Each option falls back to the environment variable {ENV_PREFIX}<OPTION> "
        f"(e.g. {ENV_PREFIX}CALLBACK_URL).",
    )
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", "8765") or 8765))
    parser.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        help="base URL advertised by iTero Discovery (default: the listening URL)",
    )
    parser.add_argument("--client-id", default=_env("CLIENT_ID", "sandbox-client"))
    parser.add_argument("--client-secret", default=_env("CLIENT_SECRET", "sandbox-secret"))
    parser.add_argument("--token-ttl", type=int, default=int(_env("TOKEN_TTL", "3600") or 3600))
    parser.add_argument(
        "--callback-url",
        default=_env("CALLBACK_URL"),
        help="the host's callbacks endpoint; without it no callbacks are sent",
    )
    parser.add_argument(
        "--callback-secret",
        default=_env("CALLBACK_SECRET"),
        help="whsec_<base64> signing secret (default: a fresh one, printed at start)",
    )
    parser.add_argument(
        "--callback-delay", type=float, default=float(_env("CALLBACK_DELAY", "0.2") or 0.2)
    )
    parser.add_argument(
        "--no-auto-callbacks",
        dest="auto_callbacks",
        action="store_false",
        default=_env_flag("AUTO_CALLBACKS", True),
    )
    parser.add_argument(
        "--plan-viewer-url",
        default=_env("PLAN_VIEWER_URL"),
        help="template of the viewerUrl sent with treatment plans ({caseId}, {planId}, "
        "{version}); default: none sent",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=int(_env("MAX_IN_FLIGHT", "0") or 0) or None,
        help="requests served at once; one more is answered 429 (default: no cap)",
    )
    parser.add_argument("--itero-client-id", default=_env("ITERO_CLIENT_ID", "itero-client"))
    parser.add_argument(
        "--itero-client-secret", default=_env("ITERO_CLIENT_SECRET", "itero-secret")
    )
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    sandbox = Sandbox(
        host=options.host,
        port=options.port,
        client_id=options.client_id,
        client_secret=options.client_secret,
        token_ttl=options.token_ttl,
        callback_url=options.callback_url,
        callback_secret=options.callback_secret,
        auto_callbacks=options.auto_callbacks,
        callback_delay=options.callback_delay,
        itero_client_id=options.itero_client_id,
        itero_client_secret=options.itero_client_secret,
        public_url=options.public_url,
        plan_viewer_url=options.plan_viewer_url,
        max_in_flight=options.max_in_flight,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        sandbox.start()
    except OSError as err:
        print(f"cannot listen on {options.host}:{options.port}: {err}", file=sys.stderr)
        return 1
    print(
        f"Align sandbox listening on {sandbox.url} (control page {sandbox.url}/__sandbox__/)",
        flush=True,
    )
    if not options.callback_secret:
        # A throwaway secret made up for this run: the host needs it to verify callbacks.
        print(
            f"callback secret (generated): {sandbox.callback_secret}", file=sys.stderr, flush=True
        )
    while not stopping.wait(0.5):
        pass
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
