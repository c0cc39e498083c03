"""Per-case Align state: the ids Align gave us, the plan under review, the status."""

from __future__ import annotations

from django.db import models

from align_integration.models._case import case_model_reference


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
    status = models.CharField(max_length=64, blank=True, default="")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Align case state"
        permissions = [("send_to_align", "Can send a case (patient data) to Align")]

    def __str__(self) -> str:
        return f"Align state of case {self.case_id}"

    @property
    def order_sent(self) -> bool:
        return bool(self.patient_id and self.order_id and self.assets_uploaded_at)
