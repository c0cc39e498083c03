"""Watching the lab status of the orders on our cases, per paired lab account.

A status change alone notifies nobody and Get Orders lists only the orders ready for
download, so the moves an order makes after its download (Lab Review, iTero Modeling,
iTero Milling, Ready To Ship…) are seen only by asking: once per ``POLL_INTERVAL`` and
account (the window claimed like the Get Orders poll), the worker looks up by Rx id at
most ``ITERO["LAB_STATUS_CHECKS"]`` orders of that account — the newest revision of each
Rx that has a case, is younger than ``ITERO["LAB_STATUS_WATCH_DAYS"]``, has not reached a
final status (Ready To Ship, Returned) and was not seen within the last ``POLL_INTERVAL`` —
those checked longest ago first.  Each answer goes
through :func:`~.scans.register_order`: a changed status reaches the case's timeline, a new
file revision is registered for download.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from align_integration.client.errors import AlignError, AlignNotFound
from align_integration.conf import get_setting
from align_integration.locks import LockTimeout
from align_integration.models import IteroConnection, IteroScan
from align_integration.workflows.itero.connection import (
    IteroNeedsRepairing,
    IteroNotPaired,
    itero_client,
)
from align_integration.workflows.itero.lab_status import FINAL_STATUSES
from align_integration.workflows.itero.polling import claim_poll_window
from align_integration.workflows.itero.scans import register_order

logger = logging.getLogger("align_integration.itero")

THROTTLE_NAME = "itero:lab-status"


def watched_scans(connection: IteroConnection, limit: int) -> list[IteroScan]:
    """The account's scans whose order status is worth asking about, longest unchecked first."""
    days = int(get_setting("ITERO", "LAB_STATUS_WATCH_DAYS"))
    if days <= 0 or limit <= 0:
        return []
    now = timezone.now()
    checked_before = now - dt.timedelta(seconds=int(get_setting("ITERO", "POLL_INTERVAL")))
    newer = IteroScan.objects.filter(rx_id=OuterRef("rx_id"), pk__gt=OuterRef("pk"))
    scans = (
        IteroScan.objects.filter(
            account_number=connection.account_number,
            case__isnull=False,
            created_at__gte=now - dt.timedelta(days=days),
        )
        .filter(
            Q(lab_status_checked_at__isnull=True) | Q(lab_status_checked_at__lte=checked_before)
        )
        .exclude(state=IteroScan.RETURNED)
        .exclude(lab_status__in=FINAL_STATUSES)
        .exclude(Exists(newer))
        .order_by(F("lab_status_checked_at").asc(nulls_first=True), "pk")
    )
    return list(scans[:limit])


def watch_account(connection: IteroConnection) -> int:
    """Look up the watched orders of one account; returns how many were checked."""
    scans = watched_scans(connection, int(get_setting("ITERO", "LAB_STATUS_CHECKS")))
    if not scans:
        return 0
    client = itero_client(connection)
    checked = 0
    try:
        for scan in scans:
            try:
                order = client.get_order(scan.rx_id)
            except AlignNotFound:
                order = None  # withdrawn, or not ready again: asked again later
            checked += 1
            if order is not None and str(order.get("rxId") or scan.rx_id) == scan.rx_id:
                order.setdefault("rxId", scan.rx_id)
                register_order(order, source="status", connection=connection)
            IteroScan.objects.filter(pk=scan.pk).update(lab_status_checked_at=timezone.now())
    finally:
        client.close()
    logger.info(
        "itero_lab_status account=%s outcome=checked orders=%d", connection.account_number, checked
    )
    return checked


def watch_lab_statuses(*, force: bool = False) -> int:
    """Check the watched orders of every paired account whose window is ours; returns how
    many orders were looked up.  One account's trouble does not stop the others; once all
    were tried, the first failure is raised."""
    checked = 0
    failure: AlignError | LockTimeout | None = None
    for connection in IteroConnection.objects.paired():
        if not force and not claim_poll_window(connection.account_number, THROTTLE_NAME):
            continue
        try:
            checked += watch_account(connection)
        except (IteroNeedsRepairing, IteroNotPaired, LockTimeout) as error:
            failure = failure or error
        except AlignError as error:
            logger.warning(
                "itero_lab_status account=%s outcome=failed status=%s error=%s",
                connection.account_number,
                error.status_code or "-",
                type(error).__name__,
            )
            failure = failure or error
    if failure is not None:
        raise failure
    return checked
