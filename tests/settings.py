"""Settings of the test host project.

``DATABASE_URL`` (CI: PostgreSQL) selects the database, SQLite otherwise; ``REDIS_URL``
names the Redis that the Redis-marked tests use.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "waffle",
    "align_integration",
    "tests.testapp",
]
# The database task backend the ops tests run real workers on (tests/ops); on Django 5.2
# Django's tasks framework is the django-tasks backport.
if django.VERSION < (6, 0):
    INSTALLED_APPS.append("django_tasks")
INSTALLED_APPS.append("django_tasks_db")
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "waffle.middleware.WaffleMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

#: make test runs the Django 6.x suite through tox at the same time as the default one.
_SECOND_RUN = os.environ.get("ALIGN_TEST_RUN", "") == "tox"
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'test.sqlite3'}", conn_max_age=0
    )
}
if _SECOND_RUN and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_tox"}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
# Under pytest-xdist each worker flushes its own Redis database: gw0 keeps REDIS_URL's, gw1
# takes the one below it, and so on.  A second run at the same time (make test runs the
# Django 6.x run through tox beside the default one, ALIGN_TEST_RUN=tox) takes the two below
# those, and test databases of its own.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_shift = (int(_XDIST_WORKER[2:]) if _XDIST_WORKER[2:].isdigit() else 0) + 2 * _SECOND_RUN
_base, _, _db = REDIS_URL.rpartition("/")
if _shift and _db.isdigit():
    REDIS_URL = f"{_base}/{(int(_db) - _shift) % 16}"

STATIC_URL = "/static/"
MEDIA_ROOT = os.environ.get("ALIGN_TEST_MEDIA_ROOT", str(BASE_DIR / ".media"))
MEDIA_URL = "/media/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ALIGN_INTEGRATION_CASE_MODEL = "testapp.Case"
ALIGN_INTEGRATION = {
    "SERVICE": {
        "BASE_URL": "https://align-service.test",
        "CLIENT_ID": "test-client",
        "CLIENT_SECRET": "test-secret",
        "BACKOFF_FACTOR": 0,
        "BACKOFF_JITTER": 0,
        "RETRY_AFTER_MAX": 1,
        "READ_TIMEOUT": 5,
    },
    "TOKEN_CACHE": "default",
    "CALLBACK_SECRETS": ["whsec_dGVzdC1zZWNyZXQtb25lLTEyMzQ1Njc4OTA="],
    "CHIEF_CONCERN": "Crowding and spacing",
}
# The test run is one process with LocMem; the Redis-marked tests use Redis explicitly.
SILENCED_SYSTEM_CHECKS = ["align_integration.W002"]
