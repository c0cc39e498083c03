"""Remote operations: every POST/PUT to Align, with its idempotency key and retry state.

The database is the source of truth for outbound work: a row is written (with its
idempotency key) before the first attempt, so a retry, in the request or in the
background, reuses the key and Align never acts twice.

Vendor text is never kept as it came: ``last_errors`` holds the app's summary,
``result`` the ids of the answer, and ``vendor_detail`` (superusers only) the vendor's
messages, redacted (``workflows.operations``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from align_integration.models._case import case_foreign_key


class OperationQuerySet(models.QuerySet["RemoteOperation"]):
    def due(self) -> OperationQuerySet:
        return self.filter(
            state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at__lte=timezone.now()
        )


class RemoteOperation(models.Model):
    CREATE_PATIENT = "create_patient"
    CREATE_ORDER = "create_order"
    UPLOAD_ASSETS = "upload_assets"
    CLINCHECK_ACCEPT = "clincheck_accept"
    CLINCHECK_REVISE = "clincheck_revise"
    AUTO_SEND = "auto_send"
    KINDS = [
        (CREATE_PATIENT, "Create patient"),
        (CREATE_ORDER, "Create primary order"),
        (UPLOAD_ASSETS, "Upload assets"),
        (CLINCHECK_ACCEPT, "ClinCheck accept"),
        (CLINCHECK_REVISE, "ClinCheck revision"),
        (AUTO_SEND, "Automatic send to Align"),
    ]

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    STATES = [
        (PENDING, "Pending"),
        (IN_PROGRESS, "In progress"),
        (SUCCEEDED, "Succeeded"),
        (RETRY_SCHEDULED, "Retry scheduled"),
        (FAILED, "Failed"),
    ]

    case = case_foreign_key("align_operations")
    kind = models.CharField(max_length=32, choices=KINDS, db_index=True)
    dedupe_key = models.CharField(
        max_length=200,
        unique=True,
        help_text="One row per logical operation: a re-run finds this row instead of acting again.",
    )
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=24, choices=STATES, default=PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    ambiguous = models.BooleanField(
        default=False, help_text="The last attempt may have reached Align (timeout, reset)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error_code = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="Stable code of the last failure (rejected, not_found, timeout…).",
    )
    last_errors = models.JSONField(
        default=list,
        blank=True,
        help_text="The app's summary of the last failure, never vendor text.",
    )
    vendor_detail = models.TextField(
        blank=True,
        default="",
        help_text="The vendor's own error messages of the last failure, redacted; for "
        "support, shown to superusers only.",
    )
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(
        default=dict, blank=True, help_text="The ids of Align's answer, not the whole answer."
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state}) for case {self.case_id}"
