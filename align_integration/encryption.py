"""Encryption of tokens at rest: the iTero tokens in the database and every bearer token in
the token cache.

Fernet (AES-128-CBC + HMAC-SHA256), the key derived with HKDF from ``ITERO["ENCRYPTION_KEY"]``
(else ``SECRET_KEY``).  Decryption also tries ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, so
rotating a key does not lose what was stored.  A value no key can read decrypts to ``""``:
callers treat it as absent (a cached token is then fetched again).
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from align_integration.conf import get_setting


@functools.lru_cache(maxsize=8)  # a derivation per key, not per token read
def _fernet_for(secret: str) -> Fernet:
    # The salt and info labels are part of the stored data's format: changing them would
    # make every token stored so far unreadable.
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"django-align-integration",
        info=b"itero-token-encryption",
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def token_cipher() -> MultiFernet:
    """Encrypts with ``ITERO["ENCRYPTION_KEY"]`` (else ``SECRET_KEY``); decrypts with it and
    ``SECRET_KEY`` / ``SECRET_KEY_FALLBACKS`` too, so rotating a key does not lose the tokens."""
    secrets = [str(get_setting("ITERO", "ENCRYPTION_KEY") or settings.SECRET_KEY)]
    secrets += [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    unique = list(dict.fromkeys(secret for secret in secrets if secret))
    return MultiFernet([_fernet_for(secret) for secret in unique])


def encrypt_token(value: str) -> str:
    """``value`` encrypted (URL-safe text), or ``""`` for an empty value."""
    return token_cipher().encrypt(value.encode()).decode() if value else ""


def decrypt_token(value: str) -> str:
    """The plain token, or ``""`` when there is none or no key can read it."""
    if not value:
        return ""
    try:
        return token_cipher().decrypt(value.encode()).decode()
    except (InvalidToken, UnicodeError):
        return ""
