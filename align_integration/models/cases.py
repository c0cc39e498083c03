"""Per-case Align state: the ids Align gave us, the plan under review, the status."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, models, transaction

from align_integration.models._case import case_model_reference

#: What people read for each status Align reports (``case.status_changed``); the one place
#: statuses are named.  An unknown status reads as its words (see :func:`status_label`).
ALIGN_STATUS_LABELS: dict[str, str] = {
    "submitted": "Submitted to Align",
    "received": "Received by Align",
    "in_review": "Being reviewed at Align",
    "treatment_plan_ready": "Treatment plan ready for review",
    "revision_requested": "Revision requested",
    "accepted": "Treatment plan accepted",
    "in_manufacturing": "Aligners in manufacturing",
    "shipped": "Aligners shipped",
    "delivered": "Aligners delivered",
    "on_hold": "On hold at Align",
    "rejected": "Rejected by Align",
    "cancelled": "Cancelled",
    "canceled": "Cancelled",
    "completed": "Treatment completed",
}
_SEPARATORS = re.compile(r"[\s_.\-]+")


def status_label(status: str) -> str:
    """The label of an Align status: from :data:`ALIGN_STATUS_LABELS`, else its words
    (``"in_transit"`` reads "In transit"); ``""`` for no status."""
    code = (status or "").strip()
    if code.lower() in ALIGN_STATUS_LABELS:
        return ALIGN_STATUS_LABELS[code.lower()]
    words = _SEPARATORS.sub(" ", code).strip()
    return words[:1].upper() + words[1:].lower() if words else ""


class AlignCaseManager(models.Manager["AlignCase"]):
    def for_case(self, case: Any) -> AlignCase:
        """The row of ``case``, created on first use (safe when two requests race)."""
        try:
            return self.get(case=case)
        except self.model.DoesNotExist:
            pass
        try:
            with transaction.atomic():
                return self.create(case=case)
        except IntegrityError:
            return self.get(case=case)


class AlignCase(models.Model):
    """What this app knows about one host case at Align.

    Holds the Align patient and order ids (so a retry resumes instead of creating them
    again), the claim that keeps two initiate-order runs from acting at once, the latest
    treatment plan and the latest status.
    """

    case = models.OneToOneField(
        case_model_reference(), on_delete=models.CASCADE, related_name="align_state"
    )
    align_case_id = models.CharField(
        max_length=128,
        blank=True,
        default="",
        db_index=True,
        help_text="The caseId sent to Align (CaseAdapter.case_reference); callbacks carry it.",
    )
    patient_id = models.CharField(max_length=64, blank=True, default="")
    order_id = models.CharField(max_length=64, blank=True, default="")
    assets_uploaded_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=36, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    treatment_plan_id = models.CharField(max_length=64, blank=True, default="")
    treatment_plan_version = models.PositiveIntegerField(null=True, blank=True)
    treatment_plan_at = models.DateTimeField(null=True, blank=True)
    awaiting_provider_review = models.BooleanField(default=False)
    treatment_plan_viewer_url = models.URLField(
        max_length=2000,
        blank=True,
        default="",
        help_text="The https link to the plan in Align's ClinCheck viewer (viewerUrl), if sent.",
    )
    status = models.CharField(max_length=64, blank=True, default="")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AlignCaseManager()

    class Meta:
        verbose_name = "Align case state"
        permissions = [("send_to_align", "Can send a case (patient data) to Align")]

    def __str__(self) -> str:
        return f"Align state of case {self.case_id}"

    @property
    def status_label(self) -> str:
        """The Align status as people read it (``status_label``)."""
        return status_label(self.status)

    @property
    def order_sent(self) -> bool:
        return bool(self.patient_id and self.order_id and self.assets_uploaded_at)
