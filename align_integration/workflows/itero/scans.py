"""Scan intake: an iTero order (from a notification or Get Orders) becomes an ``IteroScan``.

One ``IteroScan`` per *file revision* of an order: the order id never changes, but every
change to the scan's files (rescan, modeling, …) is a new revision, downloaded once.  The
revision is the order's ``version`` when it has one, else its status and ``receivedAt``.
The patient fields of the order are used only here, in memory, to find the case
(``CaseAdapter.match_scan``); they are never stored or logged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from align_integration.adapters import get_adapter
from align_integration.models import CaseEvent, IteroConnection, IteroScan
from align_integration.models.itero import order_summary
from align_integration.workflows.itero.lab_status import (
    READY_FOR_DOWNLOAD,
    lab_status_of,
    note_lab_status,
)
from align_integration.workflows.itero.linking import attach_case
from align_integration.workflows.itero.revisions import (
    newest_revision,
    numeric_version,
    revision_of,
    supersede_waiting_revisions,
)
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.itero")

XML_VERSION = re.compile(r"[vV]?(\d{1,4})")


def _known_revision(rx_id: str, order: dict[str, Any], revision: str) -> IteroScan | None:
    """The scan that already covers this revision of the order, if any."""
    scans = list(IteroScan.objects.filter(rx_id=rx_id).order_by("-created_at", "-pk"))
    for scan in scans:
        if scan.revision == revision:
            return scan
    if not scans:
        return None
    version = numeric_version(revision)
    if version is not None:  # an older version seen late (stale list) is not a new change
        known = [v for v in (numeric_version(s.revision) for s in scans) if v is not None]
        if known and max(known) >= version:
            return scans[0]
    elif lab_status_of(order) not in (READY_FOR_DOWNLOAD, ""):
        # Without a version, only "Ready For Download" marks new files: "Downloaded" is our
        # own download showing, Lab Review, iTero Modeling… are the lab's work on them.
        return scans[0]
    return None


def match_case(order: dict[str, Any]) -> Any:
    """The host's case for the order, or ``None``; a failing adapter counts as no match."""
    try:
        return get_adapter().match_scan(order)
    except Exception as error:  # the host's code: never let it stop the worker
        logger.warning(
            "itero_rx=%s outcome=match_error error=%s",
            str(order.get("rxId") or "-")[:64],
            type(error).__name__,
        )
        return None


def register_order(
    order: dict[str, Any], *, source: str, connection: IteroConnection
) -> tuple[IteroScan | None, bool]:
    """The scan for this order revision, and whether it is new (to be downloaded).

    ``connection`` is the paired lab account the order was read with: an order naming
    another account is ignored.  A lab status change is noted (see :mod:`.lab_status`); a
    new revision supersedes the older ones still waiting for their download.
    """
    rx_id = str(order.get("rxId") or "").strip()
    if not rx_id or len(rx_id) > 64:
        logger.warning("itero_order source=%s outcome=ignored reason=bad_rx_id", source)
        return None, False
    account = str(order.get("accountNumber") or connection.account_number)
    if not connection.account_number or account != connection.account_number:
        logger.info("itero_rx=%s source=%s outcome=ignored reason=other_account", rx_id, source)
        return None, False
    revision = revision_of(order)
    newest = newest_revision(rx_id)
    if newest is not None:
        note_lab_status(newest, order)
    existing = _known_revision(rx_id, order, revision)
    if existing is not None:
        if existing.state == IteroScan.WAITING_FOR_CASE and existing.case_id is None:
            case = match_case(order)
            if case is not None:
                attach_case(existing, case)
        return existing, False
    case = match_case(order)
    now = timezone.now()
    lab_status = lab_status_of(order)
    try:
        with transaction.atomic():
            scan = IteroScan.objects.create(
                rx_id=rx_id,
                order_id=str(order.get("orderId") or "")[:64],
                account_number=account[:64],
                revision=revision,
                source=source,
                order_summary=order_summary(order),
                xml_version=xml_version_of(order),
                lab_status=lab_status,
                lab_status_checked_at=now,
                case=case,
                state=IteroScan.PENDING if case is not None else IteroScan.WAITING_FOR_CASE,
                next_attempt_at=now if case is not None else None,
            )
    except IntegrityError:  # another process registered it first
        return IteroScan.objects.get(rx_id=rx_id, revision=revision), False
    supersede_waiting_revisions(scan)
    logger.info(
        "itero_scan=%s rx=%s order=%s revision=%s account=%s source=%s outcome=%s case=%s",
        scan.pk,
        rx_id,
        scan.order_id or "-",
        revision,
        scan.account_number,
        source,
        scan.state,
        case.pk if case is not None else "-",
    )
    if case is not None:
        status = f", lab status {lab_status}" if lab_status else ""
        record(
            case,
            "itero_scan",
            CaseEvent.INFO,
            f"iTero scan Rx {rx_id} (order {scan.order_id or '-'}, revision {revision}"
            f"{status}) received by {source} for lab account {scan.account_number}; "
            "download queued.",
        )
    return scan, True


def xml_version_of(order: dict[str, Any]) -> str:
    """The order's ``xmlVersion`` as ``v<number>`` (``v50``), or ``""``: only a version
    number is kept, never other text."""
    match = XML_VERSION.fullmatch(str(order.get("xmlVersion") or "").strip())
    return f"v{int(match.group(1))}" if match else ""
