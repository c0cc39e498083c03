"""Inbound callbacks from the Align integration service, stored before they are processed."""

from __future__ import annotations

from django.db import models


class CallbackEvent(models.Model):
    """One signed event as received.  ``webhook_id`` is unique: a redelivery is a no-op.

    ``headers`` never contains the signature or any Authorization header.  ``unmatched``:
    the signature verified but no case answers to its ``caseId`` (yet); ``align_worker``
    resolves it again on every pass and applies it once the case is known.
    """

    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    UNMATCHED = "unmatched"
    STATES = [
        (RECEIVED, "Received"),
        (PROCESSED, "Processed"),
        (FAILED, "Failed"),
        (UNMATCHED, "Unmatched (case not known yet)"),
    ]

    webhook_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=64, db_index=True)
    case_reference = models.CharField(max_length=128, blank=True, default="", db_index=True)
    body = models.TextField()
    headers = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=STATES, default=RECEIVED, db_index=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"
