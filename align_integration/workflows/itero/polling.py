"""Get Orders polling: at most once per ``ITERO["POLL_INTERVAL"]`` across all processes.

Notifications are the fast path; the poll makes sure no scan is missed.  Align asks for
120 s or more between Get Orders calls, so the window is claimed in the shared cache
(``try_acquire_throttle`` on the token cache alias) before calling: with Redis, one call
per window whatever the number of workers.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from align_integration.client.errors import AlignError
from align_integration.conf import get_setting
from align_integration.locks import try_acquire_throttle
from align_integration.models import IteroConnection
from align_integration.outbound import outbound_paused
from align_integration.workflows.itero.connection import itero_client
from align_integration.workflows.itero.scans import register_order

logger = logging.getLogger("align_integration.itero")

THROTTLE_NAME = "itero:get-orders"


def claim_poll_window() -> bool:
    """True for the one caller per poll window, across every process sharing the cache."""
    return try_acquire_throttle(
        get_setting("TOKEN_CACHE"), THROTTLE_NAME, int(get_setting("ITERO", "POLL_INTERVAL"))
    )


def poll_orders(*, force: bool = False) -> int:
    """Get Orders (if the window is ours) and register each new order revision.

    Returns the number of new scan revisions.  ``force`` skips the window (``align_doctor``,
    tests); iTero's own rate advice still applies.
    """
    connection = IteroConnection.load()
    if not connection.is_paired or outbound_paused():  # paused: keep the window unspent
        return 0
    if not force and not claim_poll_window():
        return 0
    client = itero_client(connection)
    try:
        orders = client.list_orders()
    except AlignError as error:
        logger.warning(
            "itero_poll outcome=failed status=%s error=%s",
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
    logger.info("itero_poll outcome=ok orders=%d new=%d", len(orders), new)
    return new
