"""Scan notifications: stored as received, then confirmed with order-by-Rx-id, per account.

A notification names its lab account: it is kept only for an account this deployment
knows (paired, or needing re-pairing: then it waits), and confirmed with that account's own
token set.

A notification is only a hint (no signature scheme is published), so nothing is downloaded
on its word: the worker fetches the order by Rx id and registers that.  Several
notifications for the same Rx id (iTero sends one per file change, and may repeat one) are
confirmed with one order look-up and act once.  A 404 on the look-up (the scan is not ready
yet) is retried later like a download.

Storing is bounded, since anyone holding the token could flood the table: one pending row
per Rx id and account (a unique constraint; a repeat while one is pending adds nothing) and
at most ``ITERO["MAX_PENDING_NOTIFICATIONS"]`` pending rows in all.  Beyond that
:class:`NotificationBacklogFull` is raised (the endpoint answers 503 with ``Retry-After``);
nothing is lost, since the Get Orders poll finds every ready scan anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from align_integration.client.errors import AlignError, AlignNotFound
from align_integration.conf import get_setting
from align_integration.locks import LockTimeout
from align_integration.models import IteroConnection, IteroNotification
from align_integration.outbound import outbound_paused
from align_integration.workflows.errors import error_summary
from align_integration.workflows.itero.connection import (
    IteroNeedsRepairing,
    IteroNotPaired,
    itero_client,
)
from align_integration.workflows.itero.downloads import retry_delay
from align_integration.workflows.itero.scans import register_order

logger = logging.getLogger("align_integration.itero")

MAX_FIELD = 128


STORED = "stored"
DUPLICATE = "duplicate"
IGNORED = "ignored"


class NotificationBacklogFull(Exception):
    """``ITERO["MAX_PENDING_NOTIFICATIONS"]`` notifications already wait for the worker."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} notifications are pending")
        self.limit = limit


@dataclass(frozen=True)
class NotificationReceipt:
    """What became of a notification: ``stored``, ``duplicate`` (one for the same Rx id is
    pending: that one stands for both) or ``ignored`` (not our account)."""

    outcome: str
    notification: IteroNotification | None


def _pending(rx_id: str, account_number: str) -> IteroNotification | None:
    return IteroNotification.objects.filter(
        state=IteroNotification.RECEIVED, rx_id=rx_id, account_number=account_number
    ).first()


def accept_notification(rx_id: str, account_number: str) -> NotificationReceipt:
    """Keep a notification for the worker, at most one pending per Rx id, within the cap.

    Raises :class:`NotificationBacklogFull` when the cap is reached.
    """
    rx_id, account_number = rx_id[:MAX_FIELD], account_number[:MAX_FIELD]
    connection = IteroConnection.for_account(account_number)
    if connection is None or not connection.knows_account:
        logger.info("itero_notification outcome=ignored reason=unknown_account")
        return NotificationReceipt(IGNORED, None)
    # The cheap answer to a flood first: a repeat costs one indexed look-up, even at the cap.
    pending = _pending(rx_id, account_number)
    if pending is not None:
        return _duplicate(pending)
    limit = int(get_setting("ITERO", "MAX_PENDING_NOTIFICATIONS"))
    if IteroNotification.objects.filter(state=IteroNotification.RECEIVED).count() >= limit:
        logger.warning("itero_notification outcome=refused reason=backlog_full limit=%d", limit)
        raise NotificationBacklogFull(limit)
    for attempt in range(2):
        try:
            with transaction.atomic():
                notification = IteroNotification.objects.create(
                    rx_id=rx_id, account_number=account_number, next_attempt_at=timezone.now()
                )
            break
        except IntegrityError:  # the unique constraint: a concurrent one for this Rx won
            pending = _pending(rx_id, account_number)
            if pending is not None:
                return _duplicate(pending)
            if attempt:  # not the pending one after all: not ours to hide
                raise
            # else it was processed in between: store this one after all
    logger.info("itero_notification=%s rx=%s outcome=stored", notification.pk, notification.rx_id)
    return NotificationReceipt(STORED, notification)


def _duplicate(pending: IteroNotification) -> NotificationReceipt:
    logger.info("itero_notification=%s rx=%s outcome=duplicate", pending.pk, pending.rx_id)
    return NotificationReceipt(DUPLICATE, pending)


def store_notification(rx_id: str, account_number: str) -> IteroNotification | None:
    """The pending notification for this Rx id (new or already there); ``None`` when its
    account is not ours.  See :func:`accept_notification`."""
    return accept_notification(rx_id, account_number).notification


def _finish(rows: list[IteroNotification], state: str, outcome: str, scan: object = None) -> None:
    now = timezone.now()
    IteroNotification.objects.filter(pk__in=[row.pk for row in rows]).update(
        state=state, outcome=outcome[:200], processed_at=now, next_attempt_at=None, scan=scan
    )


def _retry_later(rows: list[IteroNotification], error: AlignError, reason: str) -> None:
    max_attempts = int(get_setting("ITERO", "DOWNLOAD_MAX_ATTEMPTS"))
    attempts = max(row.attempts for row in rows) + 1
    if attempts >= max_attempts:
        _finish(rows, IteroNotification.FAILED, f"{reason}; gave up after {attempts} attempts")
        return
    when = timezone.now() + dt.timedelta(seconds=retry_delay(attempts, error.retry_after))
    IteroNotification.objects.filter(pk__in=[row.pk for row in rows]).update(
        attempts=attempts, next_attempt_at=when, outcome=reason[:200]
    )


def process_notifications(limit: int = 50) -> int:
    """Confirm and act on the stored notifications that are due, each with its account's
    token; returns how many were handled.  Those of an account that needs re-pairing wait;
    those of an account not (or no longer) paired here are ignored.

    While outbound traffic is paused nothing is handled: the notifications stay due.
    """
    if outbound_paused():
        return 0
    now = timezone.now()
    due = list(
        IteroNotification.objects.filter(state=IteroNotification.RECEIVED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("received_at", "pk")[:limit]
    )
    by_account: dict[str, list[IteroNotification]] = {}
    for row in due:
        by_account.setdefault(row.account_number, []).append(row)
    handled = 0
    for account_number, rows in by_account.items():
        connection = IteroConnection.for_account(account_number)
        if connection is None or not connection.knows_account:
            _finish(rows, IteroNotification.IGNORED, "account is not paired")
            handled += len(rows)
        elif connection.is_paired:
            handled += _process_account(connection, rows)
        # else: the account needs re-pairing; its notifications wait
    return handled


def _process_account(connection: IteroConnection, rows: list[IteroNotification]) -> int:
    by_rx: dict[str, list[IteroNotification]] = {}
    for row in rows:
        by_rx.setdefault(row.rx_id, []).append(row)
    handled = 0
    client = itero_client(connection)
    try:
        for rx_id, same_rx in by_rx.items():
            try:
                order = client.get_order(rx_id)
            except (IteroNeedsRepairing, IteroNotPaired, LockTimeout):
                break  # the rest waits for the pairing, untouched
            except AlignNotFound as error:
                _retry_later(same_rx, error, "order not found yet (404)")
                handled += len(same_rx)
                continue
            except AlignError as error:
                if error.retryable:
                    _retry_later(same_rx, error, f"order look-up answered {error.status_code}")
                else:
                    outcome = f"order look-up: {error_summary(error, 'iTero')}"
                    _finish(same_rx, IteroNotification.FAILED, outcome)
                handled += len(same_rx)
                continue
            if str(order.get("rxId") or rx_id) != rx_id:
                _finish(same_rx, IteroNotification.FAILED, "order look-up answered another Rx id")
                handled += len(same_rx)
                continue
            order.setdefault("rxId", rx_id)
            scan, created = register_order(order, source="notification", connection=connection)
            if scan is None:
                _finish(same_rx, IteroNotification.IGNORED, "order is not for this lab account")
            else:
                outcome = "new scan revision" if created else "scan revision already known"
                _finish(same_rx, IteroNotification.PROCESSED, outcome, scan)
            handled += len(same_rx)
            logger.info(
                "itero_rx=%s account=%s notifications=%d outcome=%s",
                rx_id,
                connection.account_number,
                len(same_rx),
                "new_revision" if created else "known_revision",
            )
    finally:
        client.close()
    return handled
