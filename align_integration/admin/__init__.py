"""Admin for operating the integration: read-only logs and registered actions."""

from align_integration.admin import itero, operations  # noqa: F401
