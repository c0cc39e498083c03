"""Settings of the other host (always SQLite: it runs beside the main suite's database)."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "tests.testapp"]  # noqa: F405
INSTALLED_APPS.append("tests.otherhost")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("OTHERHOST_DB", ":memory:"),
    }
}
ALIGN_INTEGRATION_CASE_MODEL = "otherhost.Treatment"
ALIGN_INTEGRATION = {
    **ALIGN_INTEGRATION,  # noqa: F405
    "CASE_ADAPTER": "tests.otherhost.adapters.TreatmentAdapter",
}
