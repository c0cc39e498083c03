"""Alias of :mod:`align_integration.testing.sandbox`, kept so that old imports and
``python -m align_integration.sandbox`` go on working; the sandbox lives in the test kit."""

from align_integration.testing.sandbox import (
    CALL_NAMES,
    Fault,
    RecordedRequest,
    Sandbox,
    build_scan_zip,
)

__all__ = ["CALL_NAMES", "Fault", "RecordedRequest", "Sandbox", "build_scan_zip"]
