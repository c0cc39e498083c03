"""A stand-in for Align's integration service and iTero's lab API, for tests and demos.

``Sandbox`` serves both vendors' wire protocols on one local port (stdlib HTTP server),
records every request, injects faults on demand and calls the host back with signed
callbacks and scan notifications. Run it by hand with ``python -m align_integration.sandbox``.
Nothing else in ``align_integration`` imports this package.
"""

from .faults import CALL_NAMES, Fault
from .scans import build_scan_zip
from .server import Sandbox
from .wire import RecordedRequest

__all__ = ["CALL_NAMES", "Fault", "RecordedRequest", "Sandbox", "build_scan_zip"]
