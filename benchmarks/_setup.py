"""Shared set-up for the benchmark scripts: Django settings for a bench host, a sandbox."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure_django(cache: dict[str, Any] | None = None, service_url: str = "") -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "waffle",
            "align_integration",
            "tests.testapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": cache or {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        ALIGN_INTEGRATION_CASE_MODEL="testapp.Case",
        ALIGN_INTEGRATION={
            "SERVICE": {
                "BASE_URL": service_url,
                "CLIENT_ID": "sandbox-client",
                "CLIENT_SECRET": "sandbox-secret",
            }
        },
        LOGGING_CONFIG=None,
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "")
    django.setup()
    # The clients read the kill switch (a waffle switch) before every request; with its
    # table there, waffle answers from the cache as it does in a deployment.
    from django.core.management import call_command

    call_command("migrate", "waffle", verbosity=0)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
