"""Bearer tokens shared by every process through a Django cache alias.

A token is cached until shortly before ``expires_in``.  When it is missing, exactly one
caller (across threads and processes) fetches a new one under a cache lock; the others
wait and read what it stored.  A 401 invalidates the token it was sent with, never a newer
one another process already stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches

from align_integration.locks import cache_lock

logger = logging.getLogger("align_integration.client")

TOKEN_KEY_PREFIX = "align_integration:token:"  # noqa: S105 - a cache key prefix
#: Names of every token cache entry this app writes (for ``forget_tokens``).
TOKEN_NAMES = ("align", "itero")


class TokenCache:
    """Cache-backed, single-flight token for one credential set.

    ``fetch`` returns ``(access_token, expires_in_seconds)``.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], tuple[str, int]],
        *,
        alias: str = "default",
        margin: int = 60,
        lock_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.fetch = fetch
        self.alias = alias
        self.margin = margin
        self.lock_timeout = lock_timeout
        self.key = TOKEN_KEY_PREFIX + name

    @property
    def cache(self) -> Any:
        return caches[self.alias]

    def _cached(self) -> str | None:
        entry = self.cache.get(self.key)
        if isinstance(entry, dict) and entry.get("expires_at", 0) > time.time() + self.margin:
            return str(entry["token"])
        return None

    def get(self) -> str:
        token = self._cached()
        if token:
            return token
        with cache_lock(
            self.alias,
            f"token:{self.name}",
            timeout=self.lock_timeout,
            blocking_timeout=self.lock_timeout,
        ):
            token = self._cached()  # someone else may have refreshed while we waited
            if token:
                return token
            token, expires_in = self.fetch()
            expires_in = max(1, int(expires_in))
            self.cache.set(
                self.key,
                {"token": token, "expires_at": time.time() + expires_in},
                timeout=max(1, expires_in - self.margin),
            )
            logger.info("token=%s outcome=refreshed expires_in=%d", self.name, expires_in)
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one."""
        entry = self.cache.get(self.key)
        if isinstance(entry, dict) and entry.get("token") == token:
            self.cache.delete(self.key)
            logger.info("token=%s outcome=invalidated", self.name)


def forget_tokens(alias: str = "default") -> None:
    """Drop every cached token (tests, and ``align_doctor --refresh-token``)."""
    caches[alias].delete_many([TOKEN_KEY_PREFIX + name for name in TOKEN_NAMES])
