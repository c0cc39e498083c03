"""iTero lab connector tables: the pairings with lab accounts, the scans, the notifications.

- :class:`IteroConnection` — one row per iTero lab account this deployment is paired with
  (a group practice may pair several at once), each with its own token set; plus one row
  without an account number, the iTero user's sign-in between *connect* and *pair*.  Tokens
  are encrypted at rest with Fernet (:mod:`align_integration.encryption`).
- :class:`IteroScan` — one revision of one iTero order (Rx id + file change), downloaded once;
  a newer revision supersedes it.
- :class:`IteroNotification` — a scan notification as received, stored before acting.

No table holds patient data: orders are kept as a non-PHI summary, and the patient fields an
order carries are only used in memory to find the case.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, models
from django.utils import timezone

from align_integration.encryption import decrypt_token, encrypt_token
from align_integration.models._case import case_foreign_key

#: Order fields safe to keep: ids, status and dates, never the patient or the doctor.
ORDER_SUMMARY_FIELDS = (
    "rxId",
    "orderId",
    "accountNumber",
    "status",
    "caseType",
    "dueDate",
    "receivedAt",
    "version",
    "xmlVersion",
)
#: Download asset types an order may list besides the iDE zip (protocols/itero-lab-api.md).
EXTRA_ASSET_TYPES = ("thumbnails", "screenshots")


# -- the pairings ---------------------------------------------------------------------------
class IteroConnectionQuerySet(models.QuerySet["IteroConnection"]):
    def lab_accounts(self) -> IteroConnectionQuerySet:
        """The rows of lab accounts (paired, needing re-pairing or un-paired), not the sign-in."""
        return self.exclude(account_number="")

    def paired(self) -> IteroConnectionQuerySet:
        return self.lab_accounts().filter(state=IteroConnection.PAIRED)


class IteroConnection(models.Model):
    """This deployment's pairing with one iTero lab account, or (``account_number`` empty)
    the iTero user's sign-in, whose token lists the accounts and pairs them."""

    AUTHORIZED = "authorized"
    PAIRED = "paired"
    NEEDS_REPAIRING = "needs_repairing"
    UNPAIRED = "unpaired"
    STATES = [
        (AUTHORIZED, "Signed in, not paired yet"),
        (PAIRED, "Paired"),
        (NEEDS_REPAIRING, "Needs re-pairing"),
        (UNPAIRED, "Un-paired"),
    ]

    account_number = models.CharField(max_length=64, blank=True, default="")
    account_name = models.CharField(max_length=200, blank=True, default="")
    state = models.CharField(max_length=24, choices=STATES, default=UNPAIRED, db_index=True)
    refresh_token_encrypted = models.TextField(blank=True, default="", editable=False)
    access_token_encrypted = models.TextField(blank=True, default="", editable=False)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    region = models.CharField(max_length=32, blank=True, default="")
    endpoints = models.JSONField(default=dict, blank=True, help_text="From Discovery.")
    discovered_at = models.DateTimeField(null=True, blank=True)
    callback_url = models.URLField(max_length=500, blank=True, default="")
    paired_at = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    state_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IteroConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = "iTero connection"
        ordering = ["account_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["account_number"], name="itero_connection_one_row_per_account"
            )
        ]
        permissions = [
            (
                "manage_itero_connection",
                "Can connect, pair and un-pair the iTero lab account",
            )
        ]

    def __str__(self) -> str:
        return f"iTero connection {self.account_number or '(sign-in)'} ({self.state})"

    @classmethod
    def load(cls, account_number: str = "") -> IteroConnection:
        """The row of ``account_number`` (the sign-in row when empty), created un-paired on
        first use."""
        try:
            connection, _ = cls.objects.get_or_create(account_number=account_number)
        except IntegrityError:  # created meanwhile by another process
            connection = cls.objects.get(account_number=account_number)
        return connection

    @classmethod
    def for_account(cls, account_number: str) -> IteroConnection | None:
        """The row of a lab account, or ``None`` (never the sign-in row)."""
        if not account_number:
            return None
        return cls.objects.filter(account_number=account_number).first()

    @property
    def is_sign_in(self) -> bool:
        return not self.account_number

    # Tokens are properties so that plain values never reach a field, a form or a log.
    @property
    def refresh_token(self) -> str:
        return decrypt_token(self.refresh_token_encrypted)

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = encrypt_token(value)

    @property
    def access_token(self) -> str:
        return decrypt_token(self.access_token_encrypted)

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = encrypt_token(value)

    def access_token_valid_for(self, seconds: float = 5.0) -> str:
        """The stored access token if it lives at least ``seconds`` more, else ``""``."""
        if not self.access_expires_at:
            return ""
        if self.access_expires_at <= timezone.now() + dt.timedelta(seconds=seconds):
            return ""
        return self.access_token

    def set_state(self, state: str, error: str = "") -> None:
        self.state = state
        self.last_error = error[:500]
        self.state_changed_at = timezone.now()

    @property
    def is_paired(self) -> bool:
        return self.state == self.PAIRED and bool(self.account_number)

    @property
    def knows_account(self) -> bool:
        """Notifications for the account are kept (also while re-pairing is needed or under
        way: they wait for the pairing instead of being lost)."""
        return self.state != self.UNPAIRED and bool(self.account_number)


# -- scans ----------------------------------------------------------------------------------
class IteroScanQuerySet(models.QuerySet["IteroScan"]):
    def due(self, now: dt.datetime | None = None) -> IteroScanQuerySet:
        """Scans with a case whose download should run now (new, retry due, or abandoned)."""
        now = now or timezone.now()
        return self.filter(case__isnull=False).filter(
            models.Q(state=IteroScan.PENDING, next_attempt_at__lte=now)
            | models.Q(state=IteroScan.DOWNLOADING, claimed_until__lt=now)
        )


class IteroScan(models.Model):
    """One file revision of one iTero order: downloaded once, its files kept as CaseAssets."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    WAITING_FOR_CASE = "waiting_for_case"
    FAILED = "failed"
    RETURNED = "returned"
    SUPERSEDED = "superseded"
    STATES = [
        (PENDING, "Pending download"),
        (DOWNLOADING, "Downloading"),
        (DOWNLOADED, "Downloaded"),
        (WAITING_FOR_CASE, "Waiting for a case"),
        (FAILED, "Failed"),
        (RETURNED, "Returned to the doctor"),
        (SUPERSEDED, "Superseded by a newer revision"),
    ]

    rx_id = models.CharField(max_length=64, db_index=True)
    order_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    account_number = models.CharField(max_length=64, blank=True, default="")
    revision = models.CharField(
        max_length=100, help_text="The order's version, else its status and receivedAt."
    )
    state = models.CharField(max_length=24, choices=STATES, default=PENDING, db_index=True)
    source = models.CharField(
        max_length=16, blank=True, default="", help_text="notification or poll"
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    case = case_foreign_key("itero_scans", null=True, blank=True, on_delete=models.SET_NULL)
    order_summary = models.JSONField(default=dict, blank=True, help_text="Ids, status, dates only.")
    asset_count = models.PositiveIntegerField(default=0)
    fetched_assets = models.JSONField(
        default=list, blank=True, help_text="Download asset types stored so far (ide, …)."
    )
    xml_version = models.CharField(
        max_length=16, blank=True, default="", help_text="Scan metadata XML version (v50…)."
    )
    lab_status = models.CharField(
        max_length=64, blank=True, default="", help_text="The order's lab status, last seen."
    )
    lab_status_checked_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IteroScanQuerySet.as_manager()

    class Meta:
        verbose_name = "iTero scan"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["rx_id", "revision"], name="itero_scan_unique_revision")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"iTero scan {self.rx_id} ({self.revision})"


def order_summary(order: dict[str, Any]) -> dict[str, Any]:
    """The non-PHI part of an iTero order (no patient, no doctor): ids, status, dates, and
    which extra assets (thumbnails, screen captures) it lists."""
    summary = {
        key: order[key]
        for key in ORDER_SUMMARY_FIELDS
        if key in order and isinstance(order[key], str | int | float | bool)
    }
    assets = order_assets(order)
    if assets:
        summary["assets"] = assets
    return summary


def order_assets(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's ``assets`` list, read leniently and kept to known fields and types."""
    listed = order.get("assets")
    kept: list[dict[str, Any]] = []
    for asset in listed if isinstance(listed, list) else []:
        if not isinstance(asset, dict) or asset.get("assetType") not in EXTRA_ASSET_TYPES:
            continue
        entry: dict[str, Any] = {"assetType": asset["assetType"]}
        count = asset.get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            entry["count"] = max(0, min(count, 10_000))
        if isinstance(asset.get("inIde"), bool):
            entry["inIde"] = asset["inIde"]
        kept.append(entry)
    return kept


# -- notifications --------------------------------------------------------------------------
class IteroNotification(models.Model):
    """A scan notification as received.  Only its known fields are kept (Rx id, account)."""

    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    STATES = [
        (RECEIVED, "Received"),
        (PROCESSED, "Processed"),
        (IGNORED, "Ignored"),
        (FAILED, "Failed"),
    ]

    rx_id = models.CharField(max_length=128, db_index=True)
    account_number = models.CharField(max_length=128)
    state = models.CharField(max_length=16, choices=STATES, default=RECEIVED, db_index=True)
    outcome = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    scan = models.ForeignKey(
        IteroScan, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "iTero notification"
        ordering = ["-received_at", "-pk"]
        constraints = [
            # A repeat for an Rx id that still waits adds nothing: the pending row stands for
            # both (workflows.itero.notifications relies on this to bound a flood).
            models.UniqueConstraint(
                fields=["rx_id", "account_number"],
                condition=models.Q(state="received"),
                name="itero_notification_one_pending_per_rx",
            )
        ]

    def __str__(self) -> str:
        return f"iTero notification {self.rx_id} ({self.state})"
