"""Bearer tokens shared by every process through a Django cache alias, encrypted at rest.

A token is cached until shortly before ``expires_in``.  When it is missing, exactly one
caller (across threads and processes) fetches a new one under a cache lock; the others
wait and read what it stored.  A 401 invalidates the token it was sent with, never a newer
one another process already stored.

The cache holds the token encrypted (:mod:`align_integration.encryption`, the key that
also protects the iTero tokens in the database): whoever can read the cache (a shared
Redis, its dumps and replicas) cannot replay the token.  An entry that does not decrypt (a
plaintext entry from version 0.1, or a key rotated away) counts as a miss: a new token is
fetched and stored over it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache, caches

from align_integration.encryption import decrypt_token, encrypt_token
from align_integration.locks import cache_lock

logger = logging.getLogger("align_integration.client")

TOKEN_KEY_PREFIX = "align_integration:token:"  # noqa: S105 - a cache key prefix
#: Names of the token cache entries this app always writes (for ``forget_tokens``).
TOKEN_NAMES = ("align", "itero")
#: The entry listing the other names stored (one iTero token per lab account), so that
#: ``forget_tokens`` finds them too.
NAME_INDEX_KEY = "align_integration:token-index"
#: The field of a cache entry holding the encrypted token.
SEALED_FIELD = "sealed"


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
        # The last entry decrypted, and its token: one decryption per token, not per call.
        self._opened: tuple[str, str] | None = None

    @property
    def cache(self) -> BaseCache:
        return caches[self.alias]

    def _entry_token(self, entry: Any) -> str:
        """The token an entry holds, or ``""`` (old format, unreadable, or no entry)."""
        if not isinstance(entry, dict):
            return ""
        sealed = entry.get(SEALED_FIELD)
        if not isinstance(sealed, str):
            return ""
        opened = self._opened
        if opened is not None and opened[0] == sealed:  # the same entry as last time
            return opened[1]
        token = decrypt_token(sealed)
        self._opened = (sealed, token) if token else None
        return token

    def cached(self) -> str | None:
        """The cached token while it is fresh (outside the refresh margin), else ``None``."""
        entry = self.cache.get(self.key)
        token = self._entry_token(entry)
        if token and float(entry.get("expires_at", 0)) > time.time() + self.margin:
            return token
        return None

    _cached = cached  # the name ``align_doctor`` uses

    def store(self, token: str, expires_in: int) -> None:
        """Put ``token`` in the cache, encrypted, for ``expires_in`` seconds less the margin."""
        expires_in = max(1, int(expires_in))
        self.cache.set(
            self.key,
            {SEALED_FIELD: encrypt_token(token), "expires_at": time.time() + expires_in},
            timeout=max(1, expires_in - self.margin),
        )
        if self.name not in TOKEN_NAMES:
            self._index_name()

    def _index_name(self) -> None:
        """Note the name in the index (not atomic: a lost update only means a token that
        ``forget_tokens`` leaves to expire by itself)."""
        names = self.cache.get(NAME_INDEX_KEY)
        names = list(names) if isinstance(names, list) else []
        if self.name not in names:
            self.cache.set(NAME_INDEX_KEY, [*names, self.name], timeout=None)

    def get(self) -> str:
        token = self.cached()
        if token:
            return token
        with cache_lock(
            self.alias,
            f"token:{self.name}",
            timeout=self.lock_timeout,
            blocking_timeout=self.lock_timeout,
        ):
            token = self.cached()  # someone else may have refreshed while we waited
            if token:
                return token
            token, expires_in = self.fetch()
            self.store(token, expires_in)
            logger.info("token=%s outcome=refreshed expires_in=%d", self.name, int(expires_in))
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (or the entry cannot be read)."""
        entry = self.cache.get(self.key)
        if entry is None:
            return
        cached = self._entry_token(entry)
        if not cached or cached == token:
            self.cache.delete(self.key)
            logger.info("token=%s outcome=invalidated", self.name)


def forget_tokens(alias: str = "default") -> None:
    """Drop every cached token (tests, and ``align_doctor --refresh-token``)."""
    cache = caches[alias]
    indexed = cache.get(NAME_INDEX_KEY)
    names = [*TOKEN_NAMES, *(indexed if isinstance(indexed, list) else [])]
    cache.delete_many([TOKEN_KEY_PREFIX + str(name) for name in names] + [NAME_INDEX_KEY])
