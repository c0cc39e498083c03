"""pytest plugin (entry point ``align_integration``): the ``align_sandbox`` fixture.

``align_sandbox`` is a running :class:`~align_integration.sandbox.Sandbox` of both vendor
services on a free loopback port, with ``ALIGN_INTEGRATION`` pointed at it for the test
(service URL and credentials, callback secret, iTero URLs, "127.0.0.1" allowed for
Discovery), cached tokens forgotten before and after.  One server per test session; its
state, faults and recorded requests are reset for every test.

    def test_send(align_sandbox, live_server):
        align_sandbox.callback_url = live_server.url + reverse("align_integration:callbacks")
        align_sandbox.inject_fault("create_patient", status=503, times=1)
        ...
        assert align_sandbox.count("create_patient") == 2
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: At least 32 characters, as check align_integration.E011 requires.
SANDBOX_NOTIFICATION_TOKEN = "sandbox-notifications-0123456789abcdef"  # noqa: S105


def sandbox_settings(sandbox: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ALIGN_INTEGRATION`` with the vendor URLs and credentials of ``sandbox``."""
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


@pytest.fixture(scope="session")
def _align_sandbox_server() -> Iterator[Any]:
    from align_integration.sandbox import Sandbox

    sandbox = Sandbox(callback_delay=0.05).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def align_sandbox(_align_sandbox_server: Any) -> Iterator[Any]:
    """The sandbox, reset, with the Django settings pointed at it for this test."""
    from django.conf import settings
    from django.test import override_settings

    from align_integration.client.token import forget_tokens
    from align_integration.conf import get_setting

    sandbox = _align_sandbox_server
    sandbox.reset()
    sandbox.callback_url = None
    sandbox.auto_callbacks = True
    base = getattr(settings, "ALIGN_INTEGRATION", None) or {}
    with override_settings(ALIGN_INTEGRATION=sandbox_settings(sandbox, base)):
        alias = get_setting("TOKEN_CACHE")
        forget_tokens(alias)
        try:
            yield sandbox
        finally:
            sandbox.wait_idle(timeout=5)
            forget_tokens(alias)
