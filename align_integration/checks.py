"""System checks with stable ids.  A missing or wrong setting is reported here, by name,
at ``manage.py check`` / ``runserver`` / ``migrate`` time, never as a traceback at request time.

| id | what |
| --- | --- |
| align_integration.E001 | a required ``SERVICE`` key is missing |
| align_integration.E002 | ``ALIGN_INTEGRATION_CASE_MODEL`` is missing or names no installed model |
| align_integration.E003 | ``CASE_ADAPTER`` does not import or is not a ``CaseAdapter`` |
| align_integration.E004 | ``TOKEN_CACHE`` names no cache in ``CACHES`` |
| align_integration.E005 | ``SERVICE.BASE_URL`` is not https (outside DEBUG; loopback exempt) |
| align_integration.E007 | a ``CALLBACK_SECRETS`` entry is not a ``whsec_`` base64 secret |
| align_integration.E008 | ``ITERO`` is partly configured: a required key is missing |
| align_integration.E009 | ``waffle`` is not in ``INSTALLED_APPS`` |
| align_integration.E010 | ``CALLBACK_PROCESSING`` is neither ``"inline"`` nor ``"deferred"`` |
| align_integration.E011 | ``ITERO.POLL_INTERVAL`` is below 120 s (Align's polling guideline) |
| align_integration.E012 | ``ITERO.NOTIFICATION_TOKEN`` is shorter than 32 characters |
| align_integration.E013 | ``ITERO.PUBLIC_URL`` is not https (outside DEBUG; loopback exempt) |
| align_integration.E014 | ``CHIEF_CONCERN`` is empty and ``chief_concern`` is not overridden |
| align_integration.W001 | ``CALLBACK_SECRETS`` is empty: every callback will be refused |
| align_integration.W002 | the token cache is per-process (LocMem/Dummy) outside DEBUG |
| align_integration.W003 | ``ITERO.PUBLIC_URL`` is unset outside DEBUG: URLs come from the request |
| align_integration.W004 | ``ALIGN_INTEGRATION`` has a key this version does not read |
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from align_integration.adapters import CaseAdapter
from align_integration.conf import CASE_MODEL_SETTING, SETTINGS_NAME, align_settings
from align_integration.defaults import DEFAULTS, REQUIRED_SERVICE_KEYS

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
ITERO_REQUIRED = (
    "OAUTH_BASE_URL",
    "BASE_URL",
    "LOGIN_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "NOTIFICATION_TOKEN",
)


#: Shortest accepted notification token: the secret that alone authenticates iTero's calls.
MIN_NOTIFICATION_TOKEN_LENGTH = 32


def _id(number: str) -> str:
    return f"align_integration.{number}"


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


#: Align's iTero guideline: Get Orders no more often than every two minutes.
MIN_POLL_INTERVAL = 120


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    config = align_settings()
    service = config["SERVICE"]

    for key in REQUIRED_SERVICE_KEYS:
        if not service.get(key):
            problems.append(
                Error(
                    f"{SETTINGS_NAME}['SERVICE']['{key}'] is not set.",
                    hint="Set it to the Align integration service's value (see docs/settings.md).",
                    id=_id("E001"),
                )
            )

    label = getattr(settings, CASE_MODEL_SETTING, "")
    try:
        apps.get_model(label)
    except (LookupError, ValueError, TypeError):
        problems.append(
            Error(
                f"{CASE_MODEL_SETTING} is {label!r}; it must name an installed model "
                "as 'app_label.ModelName'.",
                id=_id("E002"),
            )
        )

    unknown = sorted(set(getattr(settings, SETTINGS_NAME, None) or {}) - set(DEFAULTS))
    if unknown:
        problems.append(
            Warning(
                f"{SETTINGS_NAME} has keys this version does not read: {', '.join(unknown)}.",
                hint="A misspelt key, or one removed (CASE_LEASE_SECONDS: the case lease now "
                "follows OPERATION_CLAIM_SECONDS). See docs/settings.md.",
                id=_id("W004"),
            )
        )

    adapter_problems = _check_adapter(config["CASE_ADAPTER"])
    problems.extend(adapter_problems)
    if not adapter_problems:
        problems.extend(_check_chief_concern(config))
    problems.extend(_check_cache(config["TOKEN_CACHE"]))

    base_url = service.get("BASE_URL") or ""
    if base_url and not settings.DEBUG and urlsplit(base_url).scheme != "https":
        if not is_loopback(base_url):
            problems.append(
                Error(
                    f"{SETTINGS_NAME}['SERVICE']['BASE_URL'] must use https outside DEBUG.",
                    id=_id("E005"),
                )
            )

    secrets = config["CALLBACK_SECRETS"]
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        problems.append(
            Warning(
                f"{SETTINGS_NAME}['CALLBACK_SECRETS'] is empty: every callback from the "
                "Align integration service will be refused.",
                id=_id("W001"),
            )
        )
    for index, secret in enumerate(secrets):
        if not _valid_whsec(secret):
            problems.append(
                Error(
                    f"{SETTINGS_NAME}['CALLBACK_SECRETS'][{index}] is not a 'whsec_<base64>' "
                    "secret.",
                    id=_id("E007"),
                )
            )

    itero = config["ITERO"]
    user_itero = (getattr(settings, SETTINGS_NAME, None) or {}).get("ITERO") or {}
    if user_itero:
        for key in ITERO_REQUIRED:
            if not itero.get(key):
                problems.append(
                    Error(f"{SETTINGS_NAME}['ITERO']['{key}'] is not set.", id=_id("E008"))
                )
        problems.extend(_check_itero_exposure(itero))

    poll_interval = itero.get("POLL_INTERVAL")
    if not isinstance(poll_interval, int | float) or poll_interval < MIN_POLL_INTERVAL:
        problems.append(
            Error(
                f"{SETTINGS_NAME}['ITERO']['POLL_INTERVAL'] must be at least "
                f"{MIN_POLL_INTERVAL} seconds: Align's guideline forbids polling Get Orders "
                "more often.",
                id=_id("E011"),
            )
        )

    if config["CALLBACK_PROCESSING"] not in ("inline", "deferred"):
        problems.append(
            Error(
                f"{SETTINGS_NAME}['CALLBACK_PROCESSING'] must be 'inline' or 'deferred'.",
                id=_id("E010"),
            )
        )

    if not apps.is_installed("waffle"):
        problems.append(
            Error("'waffle' must be in INSTALLED_APPS (feature flags).", id=_id("E009"))
        )
    return problems


def _check_itero_exposure(itero: dict[str, Any]) -> list[Any]:
    """The notification URL: a long enough secret, served over https outside DEBUG."""
    problems: list[Any] = []
    token = str(itero.get("NOTIFICATION_TOKEN") or "")
    if token and len(token) < MIN_NOTIFICATION_TOKEN_LENGTH:
        problems.append(
            Error(
                f"{SETTINGS_NAME}['ITERO']['NOTIFICATION_TOKEN'] is {len(token)} characters "
                f"long; it must be at least {MIN_NOTIFICATION_TOKEN_LENGTH}.",
                hint="It alone authenticates iTero's notifications: use "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
                id=_id("E012"),
            )
        )
    public_url = str(itero.get("PUBLIC_URL") or "")
    if settings.DEBUG:
        return problems
    if not public_url:
        problems.append(
            Warning(
                f"{SETTINGS_NAME}['ITERO']['PUBLIC_URL'] is not set: the notification URL "
                "given to iTero (it carries the token) is built from the request, and is "
                "plain http unless SECURE_PROXY_SSL_HEADER says otherwise.",
                hint="Set it to this site's https origin, e.g. 'https://lab.example.com'.",
                id=_id("W003"),
            )
        )
    elif not is_loopback(public_url) and (
        urlsplit(public_url).scheme != "https" or not urlsplit(public_url).hostname
    ):
        problems.append(
            Error(
                f"{SETTINGS_NAME}['ITERO']['PUBLIC_URL'] must be an https URL outside DEBUG.",
                hint="The notification URL given to iTero, which carries the token, and the "
                "OAuth redirect URL are built on it, e.g. 'https://lab.example.com'.",
                id=_id("E013"),
            )
        )
    return problems


def _check_adapter(path: str) -> list[Any]:
    try:
        adapter = import_string(path)
    except ImportError as error:
        return [
            Error(
                f"{SETTINGS_NAME}['CASE_ADAPTER'] = {path!r} does not import: {error}",
                id=_id("E003"),
            )
        ]
    if not (isinstance(adapter, type) and issubclass(adapter, CaseAdapter)):
        return [
            Error(
                f"{SETTINGS_NAME}['CASE_ADAPTER'] = {path!r} is not a subclass of "
                "align_integration.adapters.CaseAdapter.",
                id=_id("E003"),
            )
        ]
    return []


def _check_chief_concern(config: dict[str, Any]) -> list[Any]:
    """E014: the default ``chief_concern`` would send an empty chief concern."""
    adapter = import_string(config["CASE_ADAPTER"])
    overridden = adapter.chief_concern is not CaseAdapter.chief_concern
    if overridden or str(config.get("CHIEF_CONCERN") or "").strip():
        return []
    return [
        Error(
            f"{SETTINGS_NAME}['CHIEF_CONCERN'] is empty: every primary order would be sent "
            "without a chief concern.",
            hint="Copy the value the old tool hard-coded into CHIEF_CONCERN, or override "
            "CaseAdapter.chief_concern (see docs/migration.md).",
            id=_id("E014"),
        )
    ]


def _check_cache(alias: str) -> list[Any]:
    caches_setting = getattr(settings, "CACHES", {})
    if alias not in caches_setting:
        return [
            Error(
                f"{SETTINGS_NAME}['TOKEN_CACHE'] = {alias!r} is not an alias in CACHES.",
                id=_id("E004"),
            )
        ]
    backend = caches_setting[alias].get("BACKEND", "")
    if backend in PER_PROCESS_CACHES and not settings.DEBUG:
        # A warning, not an error: a single-process deployment or a test run works.
        return [
            Warning(
                f"The token cache {alias!r} ({backend.rsplit('.', 1)[-1]}) is per process: "
                "every process would fetch its own token.",
                hint="Use Redis (django.core.cache.backends.redis.RedisCache) in production.",
                id=_id("W002"),
            )
        ]
    return []


def _valid_whsec(secret: Any) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        return bool(base64.b64decode(secret[len("whsec_") :], validate=True))
    except (binascii.Error, ValueError):
        return False
