"""The pairing's tokens: how the shared iTero access token is refreshed and stored.

The access token (one hour) lives in the token cache (``TokenCache`` named ``"itero"``), so
every process shares it and exactly one refreshes it (``cache_lock`` single flight).  The
refresh token rotates on every use and is kept encrypted on :class:`IteroConnection`; the
refresh re-reads it from the database under the lock, so two processes never spend the
same one.  Discovery runs before every refresh.  A refresh refused for good moves the
connection to ``needs_repairing``: work waits (nothing is dropped) until staff pair again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.cache import caches
from django.utils import timezone

from align_integration.client.errors import AlignAuthenticationError, AlignError
from align_integration.client.itero import Discovery, IteroClient, IteroOAuthError, TokenSet
from align_integration.client.token import TOKEN_KEY_PREFIX, TokenCache
from align_integration.conf import get_setting
from align_integration.models import IteroConnection
from align_integration.outbound import ensure_outbound_allowed
from align_integration.workflows.errors import oauth_error_code

logger = logging.getLogger("align_integration.itero")

TOKEN_NAME = "itero"  # noqa: S105 - the cache entry's name, not a secret


class IteroNotPaired(AlignError):
    """No usable pairing: sign in and pair with a lab account first."""


class IteroNeedsRepairing(AlignError):
    """iTero refused the refresh token for good; staff must sign in and pair again."""


def token_cache() -> TokenCache:
    """The shared iTero access token, refreshed by :func:`refresh_access_token`."""
    return TokenCache(
        TOKEN_NAME,
        refresh_access_token,
        alias=get_setting("TOKEN_CACHE"),
        margin=int(get_setting("TOKEN_REFRESH_MARGIN")),
        lock_timeout=float(get_setting("TOKEN_LOCK_TIMEOUT")),
    )


def itero_client(connection: IteroConnection | None = None) -> IteroClient:
    """A client using the shared token and the connection's discovered endpoints.

    Raises :class:`~align_integration.outbound.OutboundPaused` while outbound traffic is
    paused: every iTero call of the workflows gets its client here.
    """
    ensure_outbound_allowed()
    connection = connection or IteroConnection.load()
    return IteroClient(tokens=token_cache(), endpoints=connection.endpoints)


def seed_token(token_set: TokenSet) -> None:
    """Put a token set's access token in the shared cache (after sign-in or pairing)."""
    token_cache().store(token_set.access_token, token_set.expires_in)


def forget_token() -> None:
    caches[get_setting("TOKEN_CACHE")].delete(TOKEN_KEY_PREFIX + TOKEN_NAME)


def store_token_set(connection: IteroConnection, token_set: TokenSet) -> None:
    """Keep a token set on the connection (encrypted); the caller saves."""
    connection.access_token = token_set.access_token
    connection.access_expires_at = timezone.now() + dt.timedelta(seconds=token_set.expires_in)
    if token_set.refresh_token:
        connection.refresh_token = token_set.refresh_token


def apply_discovery(connection: IteroConnection, discovery: Discovery) -> None:
    connection.endpoints = discovery.endpoints
    connection.region = discovery.region
    connection.discovered_at = timezone.now()


def mark_needs_repairing(connection: IteroConnection, reason: str) -> None:
    connection.set_state(IteroConnection.NEEDS_REPAIRING, reason)
    connection.refresh_token = ""
    connection.access_token = ""
    connection.access_expires_at = None
    connection.save()
    forget_token()
    logger.warning("itero_connection=%s state=needs_repairing reason=%s", connection.pk, reason)


def refresh_access_token() -> tuple[str, int]:
    """The token cache's fetch: Discovery, then the refresh grant, under the cache lock."""
    connection = IteroConnection.load()  # fresh: another process may have rotated the token
    refresh_token = connection.refresh_token
    if connection.state not in (IteroConnection.AUTHORIZED, IteroConnection.PAIRED):
        raise IteroNotPaired(f"iTero connection is {connection.state}; no token is refreshed")
    if not refresh_token:
        mark_needs_repairing(connection, "no refresh token stored")
        raise IteroNeedsRepairing("iTero connection has no refresh token")
    client = IteroClient(endpoints=connection.endpoints)
    try:
        discovered = False
        current = connection.access_token_valid_for(5)
        if current:  # Discovery before the refresh, while the old token still lives
            try:
                apply_discovery(connection, client.discover(access_token=current))
                discovered = True
            except AlignAuthenticationError:
                discovered = False
        try:
            token_set = client.refresh(refresh_token)
        except IteroOAuthError as error:
            if not error.permanent:
                raise
            mark_needs_repairing(connection, f"refresh refused ({oauth_error_code(error.error)})")
            raise IteroNeedsRepairing("iTero refused the refresh token; pair again") from error
        store_token_set(connection, token_set)
        connection.save()  # the rotated refresh token is durable before anything else
        if not discovered:
            apply_discovery(connection, client.discover(access_token=token_set.access_token))
            connection.save()
        logger.info(
            "itero_connection=%s outcome=token_refreshed expires_in=%d",
            connection.pk,
            token_set.expires_in,
        )
        return token_set.access_token, token_set.expires_in
    finally:
        client.close()
