"""Pairing with iTero lab accounts: sign-in (authorization code), Discovery, accounts,
pair, un-pair.  Several accounts may be paired at once (a group practice has more than one).

The flow a staff member follows (see docs/itero.md): ``connect`` sends the browser to the
iTero login page; the OAuth callback calls :func:`complete_authorization` (code exchange,
Discovery, the lab accounts), which keeps the user's token set on the sign-in row; choosing
an account calls :func:`pair_account`, which gives iTero the notification URL and keeps the
token set the pairing returns on that account's row.  :func:`unpair_account` un-pairs one
account (for every user of that account) and logs out its tokens.  Each raises
:class:`~align_integration.outbound.OutboundPaused` while outbound traffic is paused.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from align_integration.client.errors import AlignError
from align_integration.client.itero import IteroClient
from align_integration.models import IteroConnection
from align_integration.outbound import ensure_outbound_allowed
from align_integration.workflows.itero.connection import (
    IteroNeedsRepairing,
    IteroNotPaired,
    apply_discovery,
    drop_tokens,
    forget_token,
    itero_client,
    seed_token,
    store_token_set,
)

logger = logging.getLogger("align_integration.itero")


class UnknownLabAccount(ValueError):
    """The account number is not among the accounts the signed-in user may pair with."""


def login_redirect_url(*, redirect_uri: str, state: str) -> str:
    """The iTero login page URL to send the browser to."""
    ensure_outbound_allowed()
    client = IteroClient()
    try:
        return client.login_url(redirect_uri=redirect_uri, state=state)
    finally:
        client.close()


def lab_accounts(accounts: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The accounts as ``{"account_number", "name", "type"}``, lab accounts first."""
    cleaned = [
        {
            "account_number": str(account.get("accountNumber") or "")[:64],
            "name": str(account.get("name") or "")[:200],
            "type": str(account.get("type") or "")[:32],
        }
        for account in accounts
        if account.get("accountNumber")
    ]
    return sorted(cleaned, key=lambda account: account["type"].lower() != "lab")


def complete_authorization(code: str, redirect_uri: str) -> list[dict[str, str]]:
    """Exchange the code, keep the token set on the sign-in row, run Discovery, list the
    accounts.  The paired accounts keep their own token sets, untouched."""
    ensure_outbound_allowed()
    client = IteroClient()
    try:
        token_set = client.exchange_code(code, redirect_uri)
        sign_in = IteroConnection.load()
        store_token_set(sign_in, token_set)
        sign_in.set_state(IteroConnection.AUTHORIZED)
        sign_in.save()
        seed_token(sign_in, token_set)
        apply_discovery(sign_in, client.discover(access_token=token_set.access_token))
        sign_in.save()
        accounts = client.list_accounts(access_token=token_set.access_token)
    finally:
        client.close()
    logger.info("itero_connection=%s outcome=authorized accounts=%d", sign_in.pk, len(accounts))
    return lab_accounts(accounts)


def _signed_in() -> IteroConnection:
    sign_in = IteroConnection.load()
    if sign_in.state != IteroConnection.AUTHORIZED or not sign_in.refresh_token:
        raise IteroNotPaired("sign in to iTero before pairing")
    return sign_in


def pair_account(account_number: str, callback_url: str, *, user: Any = None) -> IteroConnection:
    """Pair with ``account_number`` (with the sign-in's token), giving ``callback_url`` for
    scan notifications; the account's row keeps the token set the pairing returns.  Other
    paired accounts are not touched; pairing an account again refreshes its row."""
    ensure_outbound_allowed()
    sign_in = _signed_in()
    client = itero_client(sign_in)
    try:
        token = sign_in.access_token_valid_for(30) or None
        accounts = {
            account["account_number"]: account
            for account in lab_accounts(client.list_accounts(access_token=token))
        }
        if account_number not in accounts:
            raise UnknownLabAccount("not an account this iTero user may pair with")
        token_set = client.pair(account_number, callback_url, access_token=token)
    finally:
        client.close()
    connection = IteroConnection.load(account_number)
    store_token_set(connection, token_set)
    connection.account_name = accounts[account_number]["name"]
    connection.endpoints = sign_in.endpoints
    connection.region = sign_in.region
    connection.discovered_at = sign_in.discovered_at
    connection.callback_url = callback_url
    connection.paired_at = timezone.now()
    connection.set_state(IteroConnection.PAIRED)
    connection.save()
    seed_token(connection, token_set)
    logger.info(
        "itero_connection=%s outcome=paired account=%s user=%s",
        connection.pk,
        account_number,
        getattr(user, "pk", "-"),
    )
    return connection


def unpair_account(account_number: str, *, user: Any = None) -> tuple[IteroConnection, bool]:
    """Un-pair one lab account at iTero (every user of that account; its notifications
    stop) and log out its tokens.  The other paired accounts go on.

    Returns the connection and whether iTero confirmed the un-pairing; when the account has
    no usable token left (needs re-pairing) only the local pairing is dropped.  A transient
    iTero error is raised and nothing changes.  :class:`UnknownLabAccount` when this
    deployment has no row for the account.
    """
    ensure_outbound_allowed()
    connection = IteroConnection.for_account(account_number)
    if connection is None:
        raise UnknownLabAccount("no pairing with that lab account here")
    confirmed = False
    if connection.state == IteroConnection.PAIRED:
        client = itero_client(connection)
        try:
            client.unpair(connection.account_number)
            confirmed = True
            connection.refresh_from_db()  # the call may have refreshed (rotated) the tokens
            for token in (connection.access_token, connection.refresh_token):
                if token:
                    try:
                        client.revoke(token)
                    except AlignError as error:  # logging out is best effort
                        logger.info(
                            "itero_connection=%s outcome=revoke_failed status=%s",
                            connection.pk,
                            error.status_code or "-",
                        )
        except (IteroNeedsRepairing, IteroNotPaired):
            pass  # no usable token left: the pairing is dropped here only
        finally:
            client.close()
    connection.refresh_from_db()
    drop_tokens(connection)
    connection.callback_url = ""
    connection.set_state(IteroConnection.UNPAIRED)
    connection.save()
    forget_token(connection.account_number)
    logger.info(
        "itero_connection=%s outcome=unpaired account=%s confirmed=%s user=%s",
        connection.pk,
        account_number,
        confirmed,
        getattr(user, "pk", "-"),
    )
    return connection, confirmed
