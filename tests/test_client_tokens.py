"""Tokens at rest: a cached bearer token is encrypted (whoever reads the cache cannot
replay it), and an entry that does not decrypt is a miss, never an error.

(On a real Redis, the raw bytes: tests/test_token_redis.py and tests/itero/test_redis.py.)
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import pytest
import responses
from django.core.cache import caches

from align_integration.client import AlignServiceClient
from align_integration.client.token import TOKEN_KEY_PREFIX, TokenCache
from align_integration.encryption import encrypt_token

# The clients read the kill switch (a waffle switch, in the database) before sending.
pytestmark = pytest.mark.django_db

BASE = "https://align-service.test"
KEY = TOKEN_KEY_PREFIX + "align"


def token_reply(token: str) -> dict[str, Any]:
    return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}


@responses.activate
def test_the_cached_token_is_encrypted_at_rest() -> None:
    responses.post(f"{BASE}/auth/token", json=token_reply("secret-bearer-1"))
    assert AlignServiceClient().token == "secret-bearer-1"
    raw = caches["default"].get(KEY)
    assert raw is not None
    assert b"secret-bearer-1" not in pickle.dumps(raw)
    assert AlignServiceClient().token == "secret-bearer-1"  # read back, not fetched again
    assert len(responses.calls) == 1


@responses.activate
def test_a_plaintext_entry_from_version_0_1_is_a_miss() -> None:
    caches["default"].set(KEY, {"token": "legacy-plain", "expires_at": time.time() + 3000})
    token_call = responses.post(f"{BASE}/auth/token", json=token_reply("fresh"))
    assert AlignServiceClient().token == "fresh"
    assert token_call.call_count == 1
    assert b"fresh" not in pickle.dumps(caches["default"].get(KEY))  # replaced, encrypted


@responses.activate
def test_an_entry_under_a_rotated_away_key_is_a_miss(settings: Any) -> None:
    settings.SECRET_KEY = "old-secret-key-old-secret-key-old-secret-key"
    sealed = encrypt_token("under-old-key")
    caches["default"].set(KEY, {"sealed": sealed, "expires_at": time.time() + 3000})
    settings.SECRET_KEY = "new-secret-key-new-secret-key-new-secret-key"
    settings.SECRET_KEY_FALLBACKS = []
    responses.post(f"{BASE}/auth/token", json=token_reply("fresh"))
    assert AlignServiceClient().token == "fresh"


def test_a_key_still_in_secret_key_fallbacks_reads_the_entry(settings: Any) -> None:
    settings.SECRET_KEY = "old-secret-key-old-secret-key-old-secret-key"
    sealed = encrypt_token("under-old-key")
    caches["default"].set(KEY, {"sealed": sealed, "expires_at": time.time() + 3000})
    settings.SECRET_KEY = "new-secret-key-new-secret-key-new-secret-key"
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key-old-secret-key-old-secret-key"]

    def no_fetch() -> tuple[str, int]:
        raise AssertionError("the entry was readable: nothing to fetch")

    assert TokenCache("align", no_fetch).get() == "under-old-key"


def test_invalidating_an_old_token_keeps_a_newer_one() -> None:
    supply = iter(["first", "second"])
    tokens = TokenCache("align", lambda: (next(supply), 3600))
    assert tokens.get() == "first"
    tokens.invalidate("first")
    assert tokens.get() == "second"
    tokens.invalidate("first")  # a late 401 for the old token
    assert tokens.cached() == "second"
