"""Return scan: send an iTero order back to the doctor for a rescan, with a reason."""

from __future__ import annotations

import logging
from typing import Any

from align_integration.client.errors import AlignError
from align_integration.models import CaseEvent, IteroScan
from align_integration.outbound import ensure_outbound_allowed
from align_integration.workflows.errors import error_summary
from align_integration.workflows.itero.connection import itero_client, paired_connection
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.itero")

MAX_REASON = 1000


def return_scan_to_doctor(scan: IteroScan, reason: str, *, user: Any = None) -> IteroScan:
    """Ask iTero to send ``scan``'s order back to the doctor (with the token of the scan's
    lab account); raise ``AlignError`` on failure (``IteroNotPaired`` when that account is
    not paired).

    The reason is sent to iTero as written by staff; it is not logged, and the timeline
    only notes that a reason was given.  Raises ``OutboundPaused`` (nothing sent, nothing
    changed) while outbound traffic is paused.
    """
    ensure_outbound_allowed()
    reason = (reason or "").strip()[:MAX_REASON]
    if not reason:
        raise ValueError("a reason is required to return a scan")
    client = itero_client(paired_connection(scan.account_number))
    try:
        client.return_scan(scan.rx_id, reason)
    except AlignError as error:
        logger.warning(
            "itero_scan=%s rx=%s outcome=return_failed status=%s",
            scan.pk,
            scan.rx_id,
            error.status_code or "-",
        )
        if scan.case is not None:
            summary = error_summary(error, "iTero")
            record(
                scan.case,
                "itero_return_scan",
                CaseEvent.FAILED,
                f"Returning iTero scan Rx {scan.rx_id} to the doctor failed ({summary}).",
                status_code=error.http_status,
                request_id=error.request_id,
                user=user,
            )
        raise
    finally:
        client.close()
    scan.state = IteroScan.RETURNED
    scan.next_attempt_at = None
    scan.save(update_fields=["state", "next_attempt_at", "updated_at"])
    if scan.case is not None:
        record(
            scan.case,
            "itero_return_scan",
            CaseEvent.SUCCEEDED,
            f"iTero scan Rx {scan.rx_id} returned to the doctor for a rescan (reason given).",
            status_code=200,
            user=user,
        )
    logger.info(
        "itero_scan=%s rx=%s outcome=returned user=%s",
        scan.pk,
        scan.rx_id,
        getattr(user, "pk", "-"),
    )
    return scan
