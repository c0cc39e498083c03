"""The iTero lab connector's flows: pairing, scan intake, downloads, linking, return scan.

Several lab accounts may be paired at once; each has its own token set, notifications and
Get Orders polls.  ``run_due_itero_work`` is what the ``align_worker`` command calls on
every pass: it processes stored notifications, polls Get Orders for each paired account
whose window is due, watches the lab status of the orders on our cases, and runs due
downloads.

Modules: ``connection`` (tokens), ``pairing``, ``notifications``, ``polling``, ``scans``
(order → scan revision), ``revisions`` (newer revisions supersede older ones),
``lab_status`` and ``status_watch`` (lab statuses on the timeline), ``downloads``,
``extraction``, ``linking``, ``returns``.
"""

from __future__ import annotations

import logging

from align_integration.client.errors import AlignError
from align_integration.conf import get_setting
from align_integration.locks import LockTimeout
from align_integration.outbound import outbound_paused
from align_integration.workflows.itero.connection import IteroNeedsRepairing, IteroNotPaired
from align_integration.workflows.itero.downloads import (
    download_scan,
    retry_download_now,
    run_due_downloads,
)
from align_integration.workflows.itero.linking import link_scan_to_case
from align_integration.workflows.itero.notifications import (
    process_notifications,
    store_notification,
)
from align_integration.workflows.itero.pairing import (
    complete_authorization,
    pair_account,
    unpair_account,
)
from align_integration.workflows.itero.polling import poll_orders
from align_integration.workflows.itero.returns import return_scan_to_doctor
from align_integration.workflows.itero.status_watch import watch_lab_statuses

logger = logging.getLogger("align_integration.itero")

__all__ = [
    "IteroNeedsRepairing",
    "IteroNotPaired",
    "complete_authorization",
    "download_scan",
    "link_scan_to_case",
    "pair_account",
    "poll_orders",
    "process_notifications",
    "retry_download_now",
    "return_scan_to_doctor",
    "run_due_downloads",
    "run_due_itero_work",
    "store_notification",
    "unpair_account",
    "watch_lab_statuses",
]


def run_due_itero_work() -> int:
    """One worker pass of the iTero connector; returns how many items were handled.

    Never raises for iTero trouble: each step logs and leaves its work for the next pass.
    While outbound traffic is paused (switch ``align-outbound-paused``) nothing is done:
    notifications, polls and downloads wait, and run on the first pass after.
    """
    if not get_setting("ITERO", "CLIENT_ID"):
        return 0  # the connector is not configured
    if outbound_paused():
        logger.info("itero_work outcome=paused")
        return 0
    handled = 0
    steps = (
        ("notifications", process_notifications),
        ("poll", poll_orders),
        ("downloads", run_due_downloads),
        ("lab_statuses", watch_lab_statuses),
    )
    for name, step in steps:
        try:
            handled += int(step())
        except (IteroNeedsRepairing, IteroNotPaired):
            logger.warning("itero_work step=%s outcome=waiting_for_pairing", name)
        except LockTimeout:
            logger.warning("itero_work step=%s outcome=token_lock_timeout", name)
        except AlignError as error:
            logger.warning(
                "itero_work step=%s outcome=failed status=%s error=%s",
                name,
                error.status_code or "-",
                type(error).__name__,
            )
    return handled
