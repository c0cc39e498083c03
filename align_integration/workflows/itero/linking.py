"""Linking a scan to a host case: automatically (``CaseAdapter.match_scan``) or by staff.

A scan whose order matched no case waits (``waiting_for_case``) and is not downloaded.
Staff link it in the admin ("link to case", with the case reference that
``CaseAdapter.get_case`` resolves); the download then runs and the files become the case's
assets.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from align_integration.models import CaseEvent, IteroScan
from align_integration.workflows.itero.downloads import download_scan
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.itero")


class ScanBusy(Exception):
    """The scan is being downloaded right now; try again in a moment."""


def attach_case(scan: IteroScan, case: Any, *, user: Any = None) -> IteroScan:
    """Give the scan its case and queue its download now."""
    scan.case = case
    scan.state = IteroScan.PENDING
    scan.attempts = 0
    scan.next_attempt_at = timezone.now()
    scan.claimed_until = None
    scan.last_error = ""
    scan.save()
    record(
        case,
        "itero_scan",
        CaseEvent.INFO,
        f"iTero scan Rx {scan.rx_id} (order {scan.order_id or '-'}) linked to this case"
        f"{' by staff' if user is not None else ''}; download queued.",
        user=user,
    )
    logger.info(
        "itero_scan=%s rx=%s outcome=linked case=%s user=%s",
        scan.pk,
        scan.rx_id,
        case.pk,
        getattr(user, "pk", "-"),
    )
    return scan


def link_scan_to_case(
    scan: IteroScan, case: Any, *, user: Any = None, download: bool = True
) -> IteroScan:
    """Link ``scan`` to ``case`` by hand and (by default) download it at once.

    A failed download is scheduled for retry like any other; the outcome is on the scan
    and in the case's timeline.
    """
    scan.refresh_from_db()
    if (
        scan.state == IteroScan.DOWNLOADING
        and scan.claimed_until
        and (scan.claimed_until > timezone.now())
    ):
        raise ScanBusy(f"iTero scan {scan.pk} is downloading")
    attach_case(scan, case, user=user)
    if download:
        download_scan(scan)
        scan.refresh_from_db()
    return scan
