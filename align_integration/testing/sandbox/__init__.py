"""A stand-in for Align's integration service and iTero's lab API, for tests and demos.

``Sandbox`` serves both vendors' wire protocols on one local port (werkzeug), records every
request, injects faults, latency and an in-flight cap on demand, stages drift, and calls the
host back with signed callbacks and scan notifications. Run it by hand with
``python -m align_integration.testing.sandbox`` (or its alias ``align_integration.sandbox``).
Nothing in the app itself imports this package.
"""

from .faults import CALL_NAMES, Fault
from .itero import LAB_STATUSES
from .scans import build_scan_zip
from .server import Sandbox
from .signing import new_callback_secret, signature_headers, signed_event
from .wire import RecordedRequest

__all__ = [
    "CALL_NAMES",
    "LAB_STATUSES",
    "Fault",
    "RecordedRequest",
    "Sandbox",
    "build_scan_zip",
    "new_callback_secret",
    "signature_headers",
    "signed_event",
]
