"""Settings of the bench host: gunicorn in bench_callbacks.py, the align_worker processes of
bench_worker.py (PostgreSQL; the sandbox named by ``BENCH_SERVICE_URL``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchsite.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "waffle",
    "align_integration",
    "tests.testapp",
]
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/align_bench"),
        conn_max_age=600,
    )
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
ALIGN_INTEGRATION_CASE_MODEL = "testapp.Case"
ALIGN_INTEGRATION = {
    "SERVICE": {
        "BASE_URL": os.environ.get("BENCH_SERVICE_URL", "https://align.invalid"),
        "CLIENT_ID": os.environ.get("BENCH_CLIENT_ID", "x"),
        "CLIENT_SECRET": os.environ.get("BENCH_CLIENT_SECRET", "x"),
    },
    # bench_worker.py's takeover run uses the defaults; its drain runs keep them too.
    "CHIEF_CONCERN": "Crowding and spacing",
    "CALLBACK_PROCESSING": os.environ.get("BENCH_CALLBACK_PROCESSING", "inline"),
    "CALLBACK_SECRETS": [os.environ.get("BENCH_SECRET", "whsec_YmVuY2gtc2VjcmV0LTEyMzQ1Njc4OTA=")],
}
LOGGING_CONFIG = None
