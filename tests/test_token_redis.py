"""The bearer token on a real Redis: one token request for many concurrent callers,
across threads and across processes; a 401 invalidates only the token it was sent with."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
from django.core.cache import caches

from align_integration.client.service import AlignServiceClient
from align_integration.client.token import TOKEN_KEY_PREFIX
from align_integration.locks import LockTimeout, cache_lock, redis_client_of
from tests.token_worker import fetch_tokens

# The clients read the kill switch (a waffle switch, in the database) before sending.
pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def test_the_token_cache_is_really_redis(redis_cache: str) -> None:
    assert redis_client_of(caches[redis_cache]) is not None


def test_many_threads_make_one_token_request(redis_cache: str, align_sandbox: Any) -> None:
    tokens: list[str] = []
    barrier = threading.Barrier(16)

    def ask() -> None:
        barrier.wait()
        tokens.append(AlignServiceClient().token)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 16 and len(set(tokens)) == 1
    assert align_sandbox.count("token") == 1
    assert AlignServiceClient().tokens.cached() == tokens[0]
    # At rest the token is encrypted: Redis's raw bytes do not hold it.
    cache = caches[redis_cache]
    raw = redis_client_of(cache).get(cache.make_key(TOKEN_KEY_PREFIX + "align"))
    assert raw and tokens[0].encode() not in raw


def test_many_processes_make_one_token_request(
    redis_cache: str, redis_url: str, align_sandbox: Any
) -> None:
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with context.Pool(4) as pool:
        results = pool.starmap(
            fetch_tokens, [(align_sandbox.url, redis_url, 4, start_at) for _ in range(4)]
        )
    tokens = [token for result in results for token in result]
    assert len(tokens) == 16 and len(set(tokens)) == 1
    assert align_sandbox.count("token") == 1


def test_a_401_refresh_does_not_throw_away_a_newer_token(
    redis_cache: str, align_sandbox: Any
) -> None:
    client = AlignServiceClient()
    old = client.token
    align_sandbox.expire_tokens()
    other = AlignServiceClient()
    other.tokens.invalidate(old)
    newer = other.token
    # The first client still holds the old token; invalidating it must keep the newer one.
    client.tokens.invalidate(old)
    assert client.token == newer
    assert align_sandbox.count("token") == 2


def test_redis_lock_excludes_other_holders(redis_cache: str) -> None:
    with cache_lock(redis_cache, "exclusive", timeout=5, blocking_timeout=1):
        with pytest.raises(LockTimeout):
            with cache_lock(redis_cache, "exclusive", timeout=5, blocking_timeout=0.2):
                pass
    with cache_lock(redis_cache, "exclusive", timeout=5, blocking_timeout=0.2):
        pass
