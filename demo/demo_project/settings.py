"""Settings of the demo host project: SQLite, LocMem cache, DEBUG, the sandbox as Align.

Nothing here is fit for production: the secrets are written in the repository and DEBUG
is on (which is also what lets the token cache be the per-process LocMem cache).

Environment: ``DEMO_PORT`` and ``SANDBOX_PORT`` (the ports ``demo/run.py`` starts the site
and the sandbox on), ``DEMO_DB_PATH`` and ``DEMO_MEDIA_ROOT`` (where the SQLite file and the
uploaded files live; the smoke test points them at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from demo_project.env import CALLBACK_SECRET, demo_port, sandbox_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"
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
    "cases",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "waffle.middleware.WaffleMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # demo/templates comes first: its align_integration/base.html extends the app's
        # own base.html to add the demo's navigation (a host can do the same).
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cases.context_processors.demo",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB_PATH") or BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            # The sandbox's callbacks arrive while the send request is still running:
            # let writers wait for each other instead of failing with "database is locked".
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
# One process (runserver) in the demo; production uses Redis so that every process
# shares one Align token (the app's check align_integration.W002 warns outside DEBUG).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

STATIC_URL = "/static/"
MEDIA_ROOT = os.environ.get("DEMO_MEDIA_ROOT") or str(BASE_DIR / "media")
MEDIA_URL = "/media/"  # never routed: files go out only through case-asset-download

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
# Quick logins for a demo; keep the default hashers in a real project.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

SANDBOX_URL = sandbox_url()
DEMO_URL = f"http://127.0.0.1:{demo_port()}"

# -- align_integration ---------------------------------------------------------------------
ALIGN_INTEGRATION_CASE_MODEL = "cases.Case"
ALIGN_INTEGRATION = {
    "CASE_ADAPTER": "cases.adapters.DemoCaseAdapter",
    "SERVICE": {
        "BASE_URL": SANDBOX_URL,
        "CLIENT_ID": "sandbox-client",
        "CLIENT_SECRET": "sandbox-secret",
    },
    "TOKEN_CACHE": "default",
    "CALLBACK_SECRETS": [CALLBACK_SECRET],
    # The old tool hard-coded its chief concern; a real project copies that value here.
    "CHIEF_CONCERN": "Crowding and spacing",
    "ITERO": {
        "OAUTH_BASE_URL": SANDBOX_URL,
        "BASE_URL": SANDBOX_URL,
        "LOGIN_URL": f"{SANDBOX_URL}/itero/login",
        "CLIENT_ID": "itero-client",
        "CLIENT_SECRET": "itero-secret",
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "NOTIFICATION_TOKEN": "demo-notify-token-not-secret-0123456789",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "align_integration": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
