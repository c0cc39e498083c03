"""Pointing a host's settings at a sandbox, and changing single ``ALIGN_INTEGRATION`` keys.

``override_settings(ALIGN_INTEGRATION=…)`` replaces the whole dict; these helpers merge into
it instead. Like django-waffle's ``override_flag`` each works as a context manager, a
function decorator or a class decorator (unittest style), as well as in pytest.

    with use_sandbox(sandbox):                       # service, callbacks and iTero → sandbox
        ...

    @override_align_settings(SERVICE={"RETRIES": 0}, HEALTH_TOKEN="t")
    def test_…(…): ...                               # nested dicts merged one level deep
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.test import override_settings
from django.test.utils import TestContextDecorator

from align_integration.client.token import forget_tokens
from align_integration.conf import get_setting

from .sandbox import Sandbox

#: The notification token the sandbox settings use: at least 32 characters, as the system
#: check for ``ITERO["NOTIFICATION_TOKEN"]`` requires.
SANDBOX_NOTIFICATION_TOKEN = "sandbox-notifications-0123456789abcdef"  # noqa: S105


def sandbox_settings(sandbox: Sandbox, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ALIGN_INTEGRATION`` (``base`` if given) with the vendor URLs and credentials of
    ``sandbox``: service URL and credentials, its callback secret added to
    ``CALLBACK_SECRETS``, the iTero URLs and credentials, ``127.0.0.1`` allowed for Discovery.
    """
    config = dict(base or {})
    config["SERVICE"] = {
        **(config.get("SERVICE") or {}),
        "BASE_URL": sandbox.url,
        "CLIENT_ID": sandbox.client_id,
        "CLIENT_SECRET": sandbox.client_secret,
    }
    secrets = config.get("CALLBACK_SECRETS") or []
    if isinstance(secrets, str):
        secrets = [secrets]
    config["CALLBACK_SECRETS"] = [sandbox.callback_secret, *secrets]
    itero = dict(config.get("ITERO") or {})
    itero.update(
        {
            "OAUTH_BASE_URL": sandbox.url,
            "BASE_URL": sandbox.url,
            "LOGIN_URL": f"{sandbox.url}/itero/login",
            "CLIENT_ID": sandbox.itero.auth.client_id,
            "CLIENT_SECRET": sandbox.itero.auth.client_secret,
            "ALLOWED_HOSTS": [*(itero.get("ALLOWED_HOSTS") or []), "127.0.0.1"],
            "NOTIFICATION_TOKEN": itero.get("NOTIFICATION_TOKEN") or SANDBOX_NOTIFICATION_TOKEN,
        }
    )
    config["ITERO"] = itero
    return config


def merged_settings(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes``; a dict value is merged into the dict it replaces."""
    config = dict(current)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _current() -> dict[str, Any]:
    return dict(getattr(settings, "ALIGN_INTEGRATION", None) or {})


class override_align_settings(TestContextDecorator):  # noqa: N801 - named like override_settings
    """Change some ``ALIGN_INTEGRATION`` keys for a block, a test or a test class."""

    def __init__(self, **changes: Any) -> None:
        super().__init__()
        self.changes = changes
        self._override: override_settings | None = None

    def settings_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return merged_settings(current, self.changes)

    def enable(self) -> None:
        self._override = override_settings(ALIGN_INTEGRATION=self.settings_for(_current()))
        self._override.enable()

    def disable(self) -> None:
        if self._override is not None:
            self._override.disable()
            self._override = None


class use_sandbox(override_align_settings):  # noqa: N801 - named like override_settings
    """Point ``ALIGN_INTEGRATION`` at ``sandbox`` (see :func:`sandbox_settings`), forgetting
    the cached Align token on the way in and out."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__()
        self.sandbox = sandbox

    def settings_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return sandbox_settings(self.sandbox, current)

    def enable(self) -> None:
        super().enable()
        forget_tokens(get_setting("TOKEN_CACHE"))

    def disable(self) -> None:
        # A test may have pointed the token cache at a dead server: forgetting is best effort.
        with contextlib.suppress(Exception):
            forget_tokens(get_setting("TOKEN_CACHE"))
        super().disable()
