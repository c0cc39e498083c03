"""Run in child processes (spawned): Django set up on tests.settings with the Redis cache,
then polling or token refreshes started together with the other processes."""

from __future__ import annotations

import os
import time
from typing import Any


def _setup(redis_url: str, config: dict[str, Any]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.ALIGN_INTEGRATION = {**config, "TOKEN_CACHE": "default"}


def _wait(start_at: float) -> None:
    while time.time() < start_at:
        time.sleep(0.001)


def poll_repeatedly(redis_url: str, config: dict[str, Any], start_at: float, tries: int) -> int:
    """Try to poll ``tries`` times; returns how many Get Orders calls this process made.

    The token must come from Redis (shared): fetching one here fails the test.
    """
    _setup(redis_url, config)
    from align_integration.client.itero import IteroClient
    from align_integration.client.token import TokenCache
    from align_integration.workflows.itero.polling import claim_poll_window

    def no_fetch() -> tuple[str, int]:
        raise AssertionError("the shared token should have been read from Redis")

    from tests.itero.helpers import ACCOUNT

    client = IteroClient(tokens=TokenCache(f"itero:{ACCOUNT}", no_fetch, alias="default"))
    _wait(start_at)
    calls = 0
    for _ in range(tries):
        if claim_poll_window(ACCOUNT):
            client.list_orders()
            calls += 1
        time.sleep(0.02)
    return calls


def refresh_together(
    redis_url: str, config: dict[str, Any], refresh_token: str, start_at: float
) -> str:
    """Ask the shared token cache for the iTero token; the one refresh rotates the token."""
    _setup(redis_url, config)
    from align_integration.client.itero import IteroClient
    from align_integration.client.token import TokenCache

    def refresh() -> tuple[str, int]:
        time.sleep(0.2)  # keep the lock long enough for everyone to queue behind it
        token_set = IteroClient().refresh(refresh_token)
        return token_set.access_token, token_set.expires_in

    from tests.itero.helpers import ACCOUNT

    tokens = TokenCache(f"itero:{ACCOUNT}", refresh, alias="default", lock_timeout=20)
    _wait(start_at)
    return tokens.get()
