"""App configuration of the demo's ``cases`` app."""

from __future__ import annotations

from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Demo cases"
    default_auto_field = "django.db.models.BigAutoField"
