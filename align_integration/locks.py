"""A lock shared by every process through a Django cache.

When the cache is Redis (Django's ``RedisCache`` or django-redis) the lock is redis-py's
``Lock`` (owner token, atomic release).  Any other cache uses ``cache.add`` (atomic on
Memcached and the database cache, per-process on LocMem), which is fine for a single
process, and the system checks warn against LocMem outside DEBUG.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import BaseCache, caches


class LockTimeout(Exception):
    """Another process held the lock for longer than we were willing to wait."""


def redis_client_of(cache: BaseCache) -> Any | None:
    """The redis-py client behind a Django cache, or ``None`` if it is not Redis."""
    inner = getattr(cache, "_cache", None)
    get_client = getattr(inner, "get_client", None)
    if get_client is not None and type(cache).__module__.startswith("django.core.cache"):
        return get_client(None, write=True)  # Django's own RedisCache
    client = getattr(cache, "client", None)  # django-redis
    if client is not None and hasattr(client, "get_client"):
        return client.get_client(write=True)
    return None


@contextmanager
def cache_lock(
    alias: str, name: str, *, timeout: float = 30.0, blocking_timeout: float = 30.0
) -> Iterator[None]:
    """Hold ``name`` across processes for at most ``timeout`` seconds."""
    cache = caches[alias]
    key = cache.make_key(f"align_integration:lock:{name}")
    redis = redis_client_of(cache)
    if redis is not None:
        lock = redis.lock(key, timeout=timeout, blocking_timeout=blocking_timeout, sleep=0.02)
        if not lock.acquire():
            raise LockTimeout(name)
        try:
            yield
        finally:
            try:
                lock.release()
            except Exception:  # noqa: S110 - expired meanwhile; another owner may hold it now
                pass
        return
    raw_key = f"align_integration:lock:{name}"
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + blocking_timeout
    while not cache.add(raw_key, owner, timeout=int(timeout) or 1):
        if time.monotonic() >= deadline:
            raise LockTimeout(name)
        time.sleep(0.02)
    try:
        yield
    finally:
        if cache.get(raw_key) == owner:
            cache.delete(raw_key)


def try_acquire_throttle(alias: str, name: str, seconds: int) -> bool:
    """True for the first caller in each ``seconds`` window across all processes."""
    return bool(caches[alias].add(f"align_integration:throttle:{name}", 1, timeout=seconds))
