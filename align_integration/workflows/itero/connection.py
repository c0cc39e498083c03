"""The pairings' tokens: how each iTero access token is refreshed and stored.

Every :class:`IteroConnection` row has its own token set: each paired lab account the one its
pairing returned, the sign-in row the iTero user's.  The access token (one hour) lives in
the token cache (a ``TokenCache`` per row: ``"itero"`` for the sign-in, ``"itero:<account>"``
for an account), so every process shares it and exactly one refreshes it (``cache_lock``
single flight).  The refresh token rotates on every use and is kept encrypted on the row;
the refresh re-reads it from the database under the lock, so two processes never spend the
same one.  Discovery runs before every refresh.  A refresh refused for good moves that row
to ``needs_repairing``: its work waits (nothing is dropped) until staff pair it again; the
other accounts go on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

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
_PLAIN_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")


class IteroNotPaired(AlignError):
    """No usable pairing: sign in and pair with a lab account first."""


class IteroNeedsRepairing(AlignError):
    """iTero refused the refresh token for good; staff must sign in and pair again."""


def token_name(account_number: str) -> str:
    """The token cache entry of an account (``"itero"`` for the sign-in), safe as a key."""
    if not account_number:
        return TOKEN_NAME
    if _PLAIN_ACCOUNT.fullmatch(account_number):
        return f"{TOKEN_NAME}:{account_number}"
    return f"{TOKEN_NAME}:sha256-{hashlib.sha256(account_number.encode()).hexdigest()[:32]}"


def token_cache(account_number: str = "") -> TokenCache:
    """The shared access token of one account (or of the sign-in), refreshed by
    :func:`refresh_access_token`."""
    return TokenCache(
        token_name(account_number),
        lambda: refresh_access_token(account_number),
        alias=get_setting("TOKEN_CACHE"),
        margin=int(get_setting("TOKEN_REFRESH_MARGIN")),
        lock_timeout=float(get_setting("TOKEN_LOCK_TIMEOUT")),
    )


def itero_client(connection: IteroConnection) -> IteroClient:
    """A client using the connection's shared token and its discovered endpoints.

    Raises :class:`~align_integration.outbound.OutboundPaused` while outbound traffic is
    paused: every iTero call of the workflows gets its client here.
    """
    ensure_outbound_allowed()
    return IteroClient(
        tokens=token_cache(connection.account_number), endpoints=connection.endpoints
    )


def paired_connection(account_number: str) -> IteroConnection:
    """The account's connection if it is paired, else :class:`IteroNotPaired`."""
    connection = IteroConnection.for_account(account_number)
    if connection is None or not connection.is_paired:
        state = connection.state if connection is not None else "unknown"
        raise IteroNotPaired(f"iTero lab account is {state}; it must be paired")
    return connection


def seed_token(connection: IteroConnection, token_set: TokenSet) -> None:
    """Put a token set's access token in the row's shared cache entry."""
    token_cache(connection.account_number).store(token_set.access_token, token_set.expires_in)


def forget_token(account_number: str | None = None) -> None:
    """Drop the cached access token of one account (``""``: the sign-in), or of every row."""
    if account_number is None:
        names = [
            token_name(number)
            for number in IteroConnection.objects.values_list("account_number", flat=True)
        ]
        names.append(TOKEN_NAME)
    else:
        names = [token_name(account_number)]
    caches[get_setting("TOKEN_CACHE")].delete_many([TOKEN_KEY_PREFIX + name for name in names])


def store_token_set(connection: IteroConnection, token_set: TokenSet) -> None:
    """Keep a token set on the connection (encrypted); the caller saves."""
    connection.access_token = token_set.access_token
    connection.access_expires_at = timezone.now() + dt.timedelta(seconds=token_set.expires_in)
    if token_set.refresh_token:
        connection.refresh_token = token_set.refresh_token


def drop_tokens(connection: IteroConnection) -> None:
    """Forget the row's tokens here (no call to iTero); the caller saves."""
    connection.refresh_token = ""
    connection.access_token = ""
    connection.access_expires_at = None


def apply_discovery(connection: IteroConnection, discovery: Discovery) -> None:
    connection.endpoints = discovery.endpoints
    connection.region = discovery.region
    connection.discovered_at = timezone.now()


def mark_needs_repairing(connection: IteroConnection, reason: str) -> None:
    connection.set_state(IteroConnection.NEEDS_REPAIRING, reason)
    drop_tokens(connection)
    connection.save()
    forget_token(connection.account_number)
    logger.warning(
        "itero_connection=%s account=%s state=needs_repairing reason=%s",
        connection.pk,
        connection.account_number or "-",
        reason,
    )


def refresh_access_token(account_number: str = "") -> tuple[str, int]:
    """The token cache's fetch: Discovery, then the refresh grant, under the cache lock."""
    # Fresh from the database: another process may have rotated the token.
    connection = IteroConnection.objects.filter(account_number=account_number).first()
    if connection is None or connection.state not in (
        IteroConnection.AUTHORIZED,
        IteroConnection.PAIRED,
    ):
        state = connection.state if connection is not None else IteroConnection.UNPAIRED
        raise IteroNotPaired(f"iTero connection is {state}; no token is refreshed")
    refresh_token = connection.refresh_token
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
            "itero_connection=%s account=%s outcome=token_refreshed expires_in=%d",
            connection.pk,
            account_number or "-",
            token_set.expires_in,
        )
        return token_set.access_token, token_set.expires_in
    finally:
        client.close()
