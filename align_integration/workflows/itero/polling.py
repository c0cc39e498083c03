"""Get Orders polling, per paired lab account: at most once per ``ITERO["POLL_INTERVAL"]``
for each account, across all processes.

Notifications are the fast path; the poll makes sure no scan is missed.  Align asks for
120 s or more between Get Orders calls, so each account's window is claimed in the shared
cache (``try_acquire_throttle`` on the token cache alias) before calling: with Redis, one
call per account and window whatever the number of workers.  Each account is polled with
its own token set (a pairing's token lists that account's orders).
"""

from __future__ import annotations

import logging

from django.utils import timezone

from align_integration.client.errors import AlignError
from align_integration.conf import get_setting
from align_integration.locks import LockTimeout, try_acquire_throttle
from align_integration.models import IteroConnection
from align_integration.outbound import outbound_paused
from align_integration.workflows.itero.connection import itero_client, token_name
from align_integration.workflows.itero.scans import register_order

logger = logging.getLogger("align_integration.itero")

THROTTLE_NAME = "itero:get-orders"


def claim_poll_window(account_number: str = "", name: str = THROTTLE_NAME) -> bool:
    """True for the one caller per poll window of the account, across every process
    sharing the cache."""
    key = f"{name}:{token_name(account_number)}" if account_number else name
    return try_acquire_throttle(
        get_setting("TOKEN_CACHE"), key, int(get_setting("ITERO", "POLL_INTERVAL"))
    )


def poll_account(connection: IteroConnection) -> int:
    """Get Orders with the account's token; register each new order revision."""
    client = itero_client(connection)
    try:
        orders = client.list_orders()
    except AlignError as error:
        logger.warning(
            "itero_poll account=%s outcome=failed status=%s error=%s",
            connection.account_number,
            error.status_code or "-",
            type(error).__name__,
        )
        raise
    finally:
        client.close()
    connection.last_poll_at = timezone.now()
    connection.save(update_fields=["last_poll_at", "updated_at"])
    new = 0
    for order in orders:
        _, created = register_order(order, source="poll", connection=connection)
        new += int(created)
    logger.info(
        "itero_poll account=%s outcome=ok orders=%d new=%d",
        connection.account_number,
        len(orders),
        new,
    )
    return new


def poll_orders(*, force: bool = False, account_number: str | None = None) -> int:
    """Poll every paired account whose window is ours (or only ``account_number``).

    Returns the number of new scan revisions.  ``force`` skips the window (``align_doctor``,
    tests); iTero's own rate advice still applies.  One account's failure does not stop
    the others; once all were tried, the first failure is raised.
    """
    if outbound_paused():  # paused: keep the windows unspent
        return 0
    connections = IteroConnection.objects.paired()
    if account_number is not None:
        connections = connections.filter(account_number=account_number)
    new = 0
    failure: AlignError | LockTimeout | None = None
    for connection in connections:
        if not force and not claim_poll_window(connection.account_number):
            continue
        try:
            new += poll_account(connection)
        except (AlignError, LockTimeout) as error:
            failure = failure or error
    if failure is not None:
        raise failure
    return new
