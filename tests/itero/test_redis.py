"""Real Redis: one Get Orders call per poll window and one token refresh, however many
worker processes ask at once (skipped without Redis, failed under CI=true)."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client

from align_integration.client.token import TOKEN_KEY_PREFIX
from align_integration.locks import redis_client_of
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.connection import token_cache
from tests.itero.helpers import ACCOUNT, connection_of, pair_through_pages
from tests.itero.procs import poll_repeatedly, refresh_together

pytestmark = pytest.mark.redis
PROCESSES = 4


@pytest.fixture
def redis_sandbox(redis_cache: str, itero_sandbox: Any) -> Any:
    """Order matters: the sandbox settings are built over the Redis token cache."""
    assert settings.ALIGN_INTEGRATION["TOKEN_CACHE"] == redis_cache
    return itero_sandbox


def child_config() -> dict[str, Any]:
    return {**settings.ALIGN_INTEGRATION}


def test_the_shared_token_lives_in_redis(redis_sandbox: Any, staff_client: Client) -> None:
    connection = pair_through_pages(staff_client)
    cache = caches[settings.ALIGN_INTEGRATION["TOKEN_CACHE"]]
    assert redis_client_of(cache) is not None
    assert token_cache(ACCOUNT).cached() == connection.access_token
    raw = redis_client_of(cache).get(cache.make_key(TOKEN_KEY_PREFIX + f"itero:{ACCOUNT}"))
    assert raw and connection.access_token.encode() not in raw  # encrypted at rest


def test_many_processes_poll_at_most_once_per_window(
    redis_sandbox: Any, staff_client: Client, redis_url: str
) -> None:
    pair_through_pages(staff_client)
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with context.Pool(PROCESSES) as pool:
        calls = pool.starmap(
            poll_repeatedly, [(redis_url, child_config(), start_at, 5)] * PROCESSES
        )
    assert sum(calls) == 1
    assert redis_sandbox.count("orders") == 1
    assert redis_sandbox.count("itero_token") == 1  # the sign-in only: nobody refreshed
    run_due_itero_work()  # this process shares the window too
    assert redis_sandbox.count("orders") == 1


def test_many_processes_refresh_the_token_once(
    redis_sandbox: Any, staff_client: Client, redis_url: str
) -> None:
    connection = pair_through_pages(staff_client)
    refresh_token = connection_of().refresh_token
    caches[settings.ALIGN_INTEGRATION["TOKEN_CACHE"]].delete(TOKEN_KEY_PREFIX + f"itero:{ACCOUNT}")
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with context.Pool(PROCESSES) as pool:
        tokens = pool.starmap(
            refresh_together,
            [(redis_url, child_config(), refresh_token, start_at)] * PROCESSES,
        )
    assert len(set(tokens)) == 1 and tokens[0] != connection.access_token
    refreshes = [
        call
        for call in redis_sandbox.calls("itero_token")
        if call.form.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1  # a second one would have been refused: the token rotates
