"""Revisions of one iTero order: which one is current, and superseding the older ones.

Every change to a scan's files (rescan, back from modeling…) is a new revision of the same
Rx id; the order id never changes.  Only the newest revision's files describe the patient's
mouth now, so a case must hold only those: once a revision's iDE archive is stored, the
files of every other revision of that Rx on the case are marked removed (``date_removed``;
nothing is deleted, the rows and files stay for the record).  The STL count — and so
``CaseAdapter.stl_files`` and eligibility — stays true.  An older revision that was still
waiting to be downloaded is superseded without a download: iTero serves only the current
files, so downloading it would fetch the newer files under the older name.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Q
from django.utils import timezone

from align_integration.models import CaseAsset, IteroScan

logger = logging.getLogger("align_integration.itero")

#: States of a revision that has not been downloaded and may be dropped for a newer one.
NOT_DOWNLOADED = (IteroScan.PENDING, IteroScan.WAITING_FOR_CASE, IteroScan.FAILED)


def revision_of(order: dict[str, Any]) -> str:
    """The order's file-change marker: ``v<version>``, else ``<status>|<receivedAt>``."""
    version = order.get("version")
    if version not in (None, ""):
        return f"v{version}"[:100]
    return f"{order.get('status') or ''}|{order.get('receivedAt') or ''}"[:100]


def numeric_version(revision: str) -> int | None:
    """``2`` for ``"v2"``; ``None`` for a revision without a version number."""
    if revision.startswith("v") and revision[1:].isdigit():
        return int(revision[1:])
    return None


def revision_rank(scan: IteroScan) -> tuple[int, int]:
    """Sort key, newest last: the version number, else the order of arrival."""
    return (numeric_version(scan.revision) or 0, scan.pk)


def newest_revision(rx_id: str) -> IteroScan | None:
    """The newest known revision of the Rx (whatever its state)."""
    scans = list(IteroScan.objects.filter(rx_id=rx_id))
    return max(scans, key=revision_rank) if scans else None


def supersede_waiting_revisions(scan: IteroScan) -> int:
    """Mark the Rx's older revisions that were never downloaded as superseded."""
    older = [
        other
        for other in IteroScan.objects.filter(rx_id=scan.rx_id, state__in=NOT_DOWNLOADED)
        if other.pk != scan.pk and revision_rank(other) < revision_rank(scan)
    ]
    if older:
        IteroScan.objects.filter(pk__in=[other.pk for other in older]).update(
            state=IteroScan.SUPERSEDED,
            next_attempt_at=None,
            claimed_until=None,
            last_error=f"superseded by revision {scan.revision}"[:500],
            updated_at=timezone.now(),
        )
        logger.info(
            "itero_rx=%s outcome=superseded_waiting revisions=%d by=%s",
            scan.rx_id,
            len(older),
            scan.revision,
        )
    return len(older)


def current_revision_on_case(rx_id: str, case_id: Any) -> IteroScan | None:
    """The newest revision of the Rx whose iDE archive is stored on the case."""
    stored = [
        scan
        for scan in IteroScan.objects.filter(rx_id=rx_id, case_id=case_id)
        if "ide" in (scan.fetched_assets or [])
    ]
    return max(stored, key=revision_rank) if stored else None


def supersede_old_files(scan: IteroScan) -> int:
    """Mark removed the files of every revision of the Rx on the case but the current one
    (the newest stored), and those revisions superseded; returns how many files were marked."""
    if scan.case_id is None:
        return 0
    current = current_revision_on_case(scan.rx_id, scan.case_id)
    if current is None:
        return 0
    others = [
        other
        for other in IteroScan.objects.filter(rx_id=scan.rx_id, case_id=scan.case_id)
        if other.pk != current.pk
    ]
    if not others:
        return 0
    older_files = Q()
    for other in others:
        older_files |= Q(source_ref__startswith=f"{other.rx_id}:{other.revision}:")
    marked = (
        CaseAsset.objects.current()
        .filter(case_id=scan.case_id, source="itero")
        .filter(older_files)
        .update(date_removed=timezone.now())
    )
    IteroScan.objects.filter(
        pk__in=[other.pk for other in others], state=IteroScan.DOWNLOADED
    ).update(state=IteroScan.SUPERSEDED, updated_at=timezone.now())
    if marked:
        logger.info(
            "itero_rx=%s case=%s outcome=superseded_files files=%d current=%s",
            scan.rx_id,
            scan.case_id,
            marked,
            current.revision,
        )
    return marked
