"""Pairing with an iTero lab account: sign-in (authorization code), Discovery, accounts,
pair, un-pair.

The flow a staff member follows (see docs/itero.md): ``connect`` sends the browser to the
iTero login page; the OAuth callback calls :func:`complete_authorization` (code exchange,
Discovery, the lab accounts); choosing an account calls :func:`pair_account`, which gives
iTero the notification URL.  :func:`unpair_account` un-pairs (for every user of that
account) and logs out.  Each raises :class:`~align_integration.outbound.OutboundPaused`
while outbound traffic is paused.
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
    IteroNotPaired,
    apply_discovery,
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
    """Exchange the code, keep the token set, run Discovery, list the accounts."""
    ensure_outbound_allowed()
    client = IteroClient()
    try:
        token_set = client.exchange_code(code, redirect_uri)
        connection = IteroConnection.load()
        store_token_set(connection, token_set)
        connection.set_state(IteroConnection.AUTHORIZED)
        connection.save()
        seed_token(token_set)
        apply_discovery(connection, client.discover(access_token=token_set.access_token))
        connection.save()
        accounts = client.list_accounts(access_token=token_set.access_token)
    finally:
        client.close()
    logger.info("itero_connection=%s outcome=authorized accounts=%d", connection.pk, len(accounts))
    return lab_accounts(accounts)


def list_lab_accounts() -> list[dict[str, str]]:
    """The accounts the signed-in user may pair with (shared token)."""
    connection = IteroConnection.load()
    client = itero_client(connection)
    try:
        token = connection.access_token_valid_for(30) or None
        return lab_accounts(client.list_accounts(access_token=token))
    finally:
        client.close()


def pair_account(account_number: str, callback_url: str, *, user: Any = None) -> IteroConnection:
    """Pair with ``account_number``, giving ``callback_url`` for scan notifications."""
    ensure_outbound_allowed()
    connection = IteroConnection.load()
    if connection.state == IteroConnection.UNPAIRED or not connection.refresh_token:
        raise IteroNotPaired("sign in to iTero before pairing")
    client = itero_client(connection)
    try:
        token = connection.access_token_valid_for(30) or None
        accounts = {
            account["account_number"]: account
            for account in lab_accounts(client.list_accounts(access_token=token))
        }
        if account_number not in accounts:
            raise UnknownLabAccount("not an account this iTero user may pair with")
        token_set = client.pair(account_number, callback_url, access_token=token)
    finally:
        client.close()
    store_token_set(connection, token_set)
    connection.account_number = account_number
    connection.account_name = accounts[account_number]["name"]
    connection.callback_url = callback_url
    connection.paired_at = timezone.now()
    connection.set_state(IteroConnection.PAIRED)
    connection.save()
    seed_token(token_set)
    logger.info(
        "itero_connection=%s outcome=paired account=%s user=%s",
        connection.pk,
        account_number,
        getattr(user, "pk", "-"),
    )
    return connection


def unpair_account(*, user: Any = None) -> tuple[IteroConnection, bool]:
    """Un-pair at iTero (every user of the account; notifications stop) and log out.

    Returns the connection and whether iTero confirmed the un-pairing; when no usable token
    is left (needs re-pairing) only the local pairing is dropped.  A transient iTero error
    is raised and nothing changes.
    """
    ensure_outbound_allowed()
    connection = IteroConnection.load()
    confirmed = False
    if connection.account_number and connection.state in (
        IteroConnection.PAIRED,
        IteroConnection.AUTHORIZED,
    ):
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
        finally:
            client.close()
    connection.refresh_from_db()
    connection.refresh_token = ""
    connection.access_token = ""
    connection.access_expires_at = None
    connection.callback_url = ""
    connection.set_state(IteroConnection.UNPAIRED)
    connection.save()
    forget_token()
    logger.info(
        "itero_connection=%s outcome=unpaired confirmed=%s user=%s",
        connection.pk,
        confirmed,
        getattr(user, "pk", "-"),
    )
    return connection, confirmed
