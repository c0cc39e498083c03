"""The lab-side status of an iTero order, as the case's timeline shows it.

The guideline's statuses are Ready For Download, Lab Review, iTero Modeling, iTero Milling,
Ready To Ship and Downloaded (plus Returned, after a return scan).  Each order we read —
from a notification, Get Orders, or the status watch (:mod:`.status_watch`) — is compared
with the status last seen for its Rx (kept on the Rx's newest revision); a change is noted
on the scan and, when the scan has a case, on the case's timeline (action
``itero_lab_status``).  Only the statuses named here are kept, spelled as here; anything
else iTero might send is noted as "another status", so no vendor text is stored.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.utils import timezone

from align_integration.models import CaseEvent, IteroScan
from align_integration.workflows.itero.revisions import numeric_version, revision_of
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.itero")

READY_FOR_DOWNLOAD = "Ready For Download"
LAB_REVIEW = "Lab Review"
ITERO_MODELING = "iTero Modeling"
ITERO_MILLING = "iTero Milling"
READY_TO_SHIP = "Ready To Ship"
DOWNLOADED = "Downloaded"
RETURNED = "Returned"
LAB_STATUSES = (
    READY_FOR_DOWNLOAD,
    LAB_REVIEW,
    ITERO_MODELING,
    ITERO_MILLING,
    READY_TO_SHIP,
    DOWNLOADED,
    RETURNED,
)
#: What an unknown status is kept as (never the vendor's own text).
OTHER = "another status"
#: Statuses after which an order is not watched any more.
FINAL_STATUSES = (READY_TO_SHIP, RETURNED)
ACTION = "itero_lab_status"

_BY_KEY = {re.sub(r"[^a-z]", "", status.lower()): status for status in LAB_STATUSES}


def lab_status_of(order: dict[str, Any]) -> str:
    """The order's status as one of :data:`LAB_STATUSES` (read leniently: case, spaces and
    underscores do not matter), :data:`OTHER`, or ``""`` when the order has none."""
    raw = order.get("status")
    if not isinstance(raw, str) or not raw.strip():
        return ""
    return _BY_KEY.get(re.sub(r"[^a-z]", "", raw.lower()), OTHER)


def is_stale(newest: IteroScan, order: dict[str, Any]) -> bool:
    """The order is an older revision than one already known (a late Get Orders list)."""
    seen, told = numeric_version(newest.revision), numeric_version(revision_of(order))
    return seen is not None and told is not None and told < seen


def note_lab_status(newest: IteroScan, order: dict[str, Any]) -> bool:
    """Compare the order's status with the one last seen for the Rx (``newest`` is its
    newest revision); on a change keep it and put it on the case's timeline.  Returns
    whether the status changed."""
    status = lab_status_of(order)
    now = timezone.now()
    if not status or is_stale(newest, order):
        return False
    previous = newest.lab_status
    newest.lab_status_checked_at = now
    if status == previous:
        IteroScan.objects.filter(pk=newest.pk).update(lab_status_checked_at=now)
        return False
    newest.lab_status = status
    IteroScan.objects.filter(pk=newest.pk).update(
        lab_status=status, lab_status_checked_at=now, updated_at=now
    )
    logger.info(
        "itero_scan=%s rx=%s outcome=lab_status_changed status=%s",
        newest.pk,
        newest.rx_id,
        status.replace(" ", "_"),
    )
    if newest.case is not None:
        was = f" (was {previous})" if previous else ""
        record(
            newest.case,
            ACTION,
            CaseEvent.INFO,
            f"iTero lab status of Rx {newest.rx_id} (order {newest.order_id or '-'}): "
            f"{status}{was}.",
        )
    return True
