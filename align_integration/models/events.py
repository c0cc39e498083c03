"""The case's Align timeline: one row per attempt and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from align_integration.models._case import case_foreign_key


class CaseEvent(models.Model):
    """One entry of a case's Align timeline.

    Written whatever the outcome.  ``message`` is built from ids, status codes and
    outcomes only: it never holds patient data.
    """

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    RETRY_SCHEDULED = "retry_scheduled"
    INFO = "info"
    OUTCOMES = [
        (STARTED, "Started"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
        (SKIPPED, "Skipped"),
        (RETRY_SCHEDULED, "Retry scheduled"),
        (INFO, "Info"),
    ]

    case = case_foreign_key("align_events")
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=24, choices=OUTCOMES)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=128, blank=True, default="")
    operation = models.ForeignKey(
        "align_integration.RemoteOperation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["case", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome}"
