"""App configuration: registers the system checks and the signal receivers."""

from __future__ import annotations

from django.apps import AppConfig


class AlignIntegrationConfig(AppConfig):
    name = "align_integration"
    label = "align_integration"
    verbose_name = "Align integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from align_integration import (
            checks,  # noqa: F401  (registers the checks)
            monitoring,
            receivers,  # noqa: F401
            tasks,
        )
        from align_integration.compat import warn_legacy_settings

        tasks.connect()
        monitoring.register()
        warn_legacy_settings()
