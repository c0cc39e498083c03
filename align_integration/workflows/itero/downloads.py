"""Downloading a scan: stream each archive to a temp file, check it, extract it.

A scan revision is the iDE archive (models, metadata XML, Rx), plus — when the order lists
them — the restorative thumbnails (the ``thumbnails`` asset type, when they are not inside
the iDE archive) and the screen captures (``screenshots``, when some were taken).  The
download is claimed first (one worker per scan), each archive streamed to a temporary file
(memory stays bounded whatever the size), checked against ``Content-Length`` and only then
extracted into the case's assets; the asset types stored so far are kept on the scan
(``fetched_assets``), so a retry goes on where it stopped.  A 404 means iTero is still
converting (or, because of the 404, regenerating) the files: the scan is retried later
with a growing delay, up to ``ITERO["DOWNLOAD_MAX_ATTEMPTS"]``, then marked failed —
visible in the admin, where staff can retry it.  Without a usable pairing of the scan's
lab account the scan simply waits.  Once the iDE archive is stored, the files of the Rx's
other revisions on the case are marked removed (:mod:`.revisions`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from typing import Any, BinaryIO, cast

from django.db.models import Q
from django.utils import timezone

from align_integration.cases import case_changed
from align_integration.client.errors import AlignError, AlignNotFound
from align_integration.client.itero import IteroDownloadIncomplete
from align_integration.client.retry import background_delay
from align_integration.conf import get_setting
from align_integration.locks import LockTimeout
from align_integration.models import CaseEvent, IteroConnection, IteroScan
from align_integration.outbound import outbound_paused
from align_integration.signals import scan_received
from align_integration.workflows.itero.connection import (
    IteroNeedsRepairing,
    IteroNotPaired,
    itero_client,
    paired_connection,
)
from align_integration.workflows.itero.extraction import (
    UnsafeArchive,
    assets_summary,
    extract_archive,
)
from align_integration.workflows.itero.revisions import (
    current_revision_on_case,
    supersede_old_files,
)
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.itero")

#: How long one download may hold its claim before another worker may take the scan over.
CLAIM_SECONDS = 1800
ACTION = "itero_scan_download"


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before the next try: ``DOWNLOAD_RETRY_BASE`` doubled per attempt, capped."""
    return background_delay(
        attempt,
        base=float(get_setting("ITERO", "DOWNLOAD_RETRY_BASE")),
        cap=float(get_setting("OPERATION_BACKOFF_MAX")),
        retry_after=float(retry_after) if retry_after is not None else None,
        jitter=False,
    )


def _claim(scan: IteroScan) -> bool:
    now = timezone.now()
    claimed = (
        IteroScan.objects.filter(pk=scan.pk, case__isnull=False)
        .filter(Q(state=IteroScan.PENDING) | Q(state=IteroScan.DOWNLOADING, claimed_until__lt=now))
        .update(
            state=IteroScan.DOWNLOADING,
            claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
            updated_at=now,
        )
    )
    scan.refresh_from_db()
    return bool(claimed)


def _release(scan: IteroScan, reason: str) -> None:
    """Back to pending without counting an attempt: the pairing is not usable right now."""
    scan.state = IteroScan.PENDING
    scan.claimed_until = None
    scan.last_error = reason[:500]
    scan.save()
    logger.info("itero_scan=%s rx=%s outcome=waiting reason=%s", scan.pk, scan.rx_id, reason)


def _retry_later(scan: IteroScan, error: AlignError, reason: str) -> None:
    max_attempts = int(get_setting("ITERO", "DOWNLOAD_MAX_ATTEMPTS"))
    scan.claimed_until = None
    scan.last_status_code = error.status_code
    scan.last_error = f"{reason} (attempt {scan.attempts} of {max_attempts})"[:500]
    if scan.attempts >= max_attempts:
        _fail(scan, f"{reason}; gave up after {scan.attempts} attempts", error)
        return
    delay = retry_delay(scan.attempts, error.retry_after)
    scan.state = IteroScan.PENDING
    scan.next_attempt_at = timezone.now() + dt.timedelta(seconds=delay)
    scan.save()
    record(
        scan.case,
        ACTION,
        CaseEvent.RETRY_SCHEDULED,
        f"iTero scan Rx {scan.rx_id}: {reason}; retry in {int(delay)} s "
        f"(attempt {scan.attempts} of {max_attempts}).",
        status_code=error.status_code,
        request_id=error.request_id,
    )


def _fail(scan: IteroScan, reason: str, error: AlignError | None = None) -> None:
    scan.state = IteroScan.FAILED
    scan.claimed_until = None
    scan.next_attempt_at = None
    scan.last_error = reason[:500]
    if error is not None:
        scan.last_status_code = error.status_code
    scan.save()
    record(
        scan.case,
        ACTION,
        CaseEvent.FAILED,
        f"iTero scan Rx {scan.rx_id}: download failed: {reason}.",
        status_code=error.status_code if error is not None else None,
        request_id=error.request_id if error is not None else "",
    )
    logger.warning("itero_scan=%s rx=%s outcome=failed", scan.pk, scan.rx_id)
    if "ide" in scan.fetched_assets:
        case_changed(scan.case)  # the models landed even though a picture archive did not


def _done(scan: IteroScan, created: int) -> None:
    current = current_revision_on_case(scan.rx_id, scan.case_id)
    newer = current.revision if current is not None and current.pk != scan.pk else ""
    superseded = bool(newer)
    scan.state = IteroScan.SUPERSEDED if superseded else IteroScan.DOWNLOADED
    scan.claimed_until = None
    scan.next_attempt_at = None
    scan.last_error = f"superseded by revision {newer}" if superseded else ""
    scan.last_status_code = 200
    scan.downloaded_at = timezone.now()
    scan.save()
    counts = assets_summary(scan)
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
    xml = f"; scan metadata XML {scan.xml_version}" if scan.xml_version else ""
    record(
        scan.case,
        ACTION,
        CaseEvent.SUCCEEDED,
        f"iTero scan Rx {scan.rx_id} (order {scan.order_id or '-'}, revision {scan.revision}) "
        f"downloaded: {scan.asset_count} files ({kinds or 'none'}){xml}."
        + (
            " A newer revision is already on the case: these files are kept as removed."
            if superseded
            else ""
        ),
        status_code=200,
    )
    logger.info(
        "itero_scan=%s rx=%s outcome=%s members=%d created=%d case=%s",
        scan.pk,
        scan.rx_id,
        scan.state,
        scan.asset_count,
        created,
        scan.case_id,
    )
    scan_received.send(sender=IteroScan, case=scan.case, scan=scan)
    case_changed(scan.case)  # new scan files: the case may be eligible now


def assets_to_fetch(scan: IteroScan) -> list[str]:
    """The download asset types of the scan, in order: the iDE archive, then the thumbnails
    when the order lists them outside the iDE archive, then the screen captures when the
    order lists some; the ones already stored are left out."""
    wanted = ["ide"]
    for asset in scan.order_summary.get("assets") or []:
        asset_type = asset.get("assetType")
        if asset_type == "thumbnails" and not asset.get("inIde", False):
            wanted.append("thumbnails")
        elif asset_type == "screenshots" and asset.get("count", 1) > 0:
            wanted.append("screenshots")
    fetched = set(scan.fetched_assets or [])
    return [asset_type for asset_type in dict.fromkeys(wanted) if asset_type not in fetched]


def _fetch(client: Any, scan: IteroScan, asset_type: str) -> int:
    """Download one archive of the scan into a temp file and store its members; returns how
    many assets were created."""
    itero = get_setting("ITERO")
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed and removed in finally
        prefix="itero-scan-", suffix=".zip", dir=itero["DOWNLOAD_TEMP_DIR"] or None, delete=False
    )
    try:
        with handle:
            client.download(
                scan.rx_id,
                cast(BinaryIO, handle),
                asset_type=asset_type,
                max_bytes=int(itero["MAX_ZIP_BYTES"]),
            )
        extracted = extract_archive(handle.name, scan, asset_type=asset_type)
    finally:
        try:
            os.unlink(handle.name)
        except FileNotFoundError:
            pass
    scan.fetched_assets = [*(scan.fetched_assets or []), asset_type]
    scan.asset_count += extracted.members
    if asset_type == "ide" and extracted.xml_version:
        scan.xml_version = extracted.xml_version  # what the archive holds beats what was said
    scan.save(update_fields=["fetched_assets", "asset_count", "xml_version", "updated_at"])
    supersede_old_files(scan)
    return len(extracted.created)


def download_scan(scan: IteroScan) -> bool:
    """Try to download ``scan`` now; True when it was downloaded and stored.

    Never raises for iTero or archive problems: the outcome is on the scan (retry
    scheduled, failed, or waiting for the pairing) and in the case's timeline.  While
    outbound traffic is paused the scan is left as it is (due), with no attempt counted.
    """
    if scan.case_id is None or outbound_paused():
        return False
    if not _claim(scan):
        return False
    try:
        connection = paired_connection(scan.account_number)
    except IteroNotPaired as error:
        _release(scan, str(error))
        return False
    scan.attempts += 1
    if not scan.fetched_assets:
        scan.asset_count = 0
    scan.save(update_fields=["attempts", "asset_count", "updated_at"])
    client = itero_client(connection)
    created = 0
    try:
        for asset_type in assets_to_fetch(scan):
            created += _fetch(client, scan, asset_type)
    except (IteroNeedsRepairing, IteroNotPaired, LockTimeout) as error:
        scan.attempts -= 1  # not the scan's fault: the token is not available now
        _release(scan, str(error) or type(error).__name__)
        return False
    except AlignNotFound as error:
        _retry_later(scan, error, "files not ready at iTero (404)")
        return False
    except IteroDownloadIncomplete as error:
        _retry_later(scan, error, "download incomplete; nothing kept")
        return False
    except UnsafeArchive as error:
        _fail(scan, f"archive refused: {error}")
        return False
    except AlignError as error:
        if error.retryable:
            _retry_later(scan, error, f"iTero answered {error.status_code or 'nothing'}")
        else:
            _fail(scan, f"iTero answered {error.status_code or 'nothing'}", error)
        return False
    except OSError as error:  # local disk or storage trouble: worth another try
        _retry_later(
            scan,
            AlignError(type(error).__name__),
            f"could not store the files ({type(error).__name__})",
        )
        return False
    finally:
        client.close()
    _done(scan, created)
    return True


def run_due_downloads(limit: int = 20) -> int:
    """Download every scan of a paired lab account that is due; returns how many were
    tried.  Scans of an account that needs re-pairing wait without blocking the others."""
    tried = 0
    paired = IteroConnection.objects.paired().values_list("account_number", flat=True)
    due = IteroScan.objects.due().filter(account_number__in=list(paired))
    for scan in list(due.order_by("next_attempt_at", "pk")[:limit]):
        download_scan(scan)
        tried += 1
    return tried


def retry_download_now(scan: IteroScan) -> bool:
    """Staff's "retry download now": reset a failed or waiting retry and try at once."""
    scan.refresh_from_db()
    if scan.case_id is None or scan.state not in (IteroScan.PENDING, IteroScan.FAILED):
        return False
    if scan.state == IteroScan.FAILED:
        scan.attempts = 0
    scan.state = IteroScan.PENDING
    scan.next_attempt_at = timezone.now()
    scan.save()
    return download_scan(scan)
