"""Settings of worker subprocesses in the ops tests: the test settings, pointed at the test
process's database (``ALIGN_TEST_DB_NAME``) and sandbox (``ALIGN_TEST_SANDBOX_URL``)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import ALIGN_INTEGRATION, DATABASES

DATABASES["default"]["NAME"] = os.environ["ALIGN_TEST_DB_NAME"]
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["ALIGN_TEST_DB_NAME"]

ALIGN_INTEGRATION = {
    **ALIGN_INTEGRATION,
    "SERVICE": {
        **ALIGN_INTEGRATION["SERVICE"],
        "BASE_URL": os.environ["ALIGN_TEST_SANDBOX_URL"],
        "CLIENT_ID": "sandbox-client",
        "CLIENT_SECRET": "sandbox-secret",
    },
}
if os.environ.get("ALIGN_TEST_TASKS") == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif os.environ.get("ALIGN_TEST_TASKS") == "celery":
    TASKS = {"default": {"BACKEND": "align_integration.integrations.celery.CeleryBackend"}}
CELERY_BROKER_URL = os.environ.get("ALIGN_TEST_BROKER_URL", "")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("ALIGN_TEST_CELERY_QUEUE", "celery")

# Settings a test shortens for its subprocesses (e.g. claim and takeover periods), as JSON.
ALIGN_INTEGRATION.update(json.loads(os.environ.get("ALIGN_TEST_SETTINGS", "{}")))
