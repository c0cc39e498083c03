"""Patients, providers and cases, with the field names the default ``CaseAdapter`` reads.

``Case`` mixes in ``AlignCaseMixin`` for ``case.can_send_to_align``,
``case.align_sales_order_number`` and ``case.align_patient_id``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from align_integration.cases import AlignCaseMixin


class Patient(models.Model):
    """A patient.  ``gender`` is "U" (unknown) until staff set it, as after the old migration."""

    MALE, FEMALE, UNKNOWN = "M", "F", "U"
    GENDERS = [(MALE, "Male"), (FEMALE, "Female"), (UNKNOWN, "Unknown")]

    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=1, choices=GENDERS, default=UNKNOWN)
    medical_record_number = models.CharField(max_length=64, unique=True)
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["last_name", "first_name"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Provider(models.Model):
    """A dentist or orthodontist who reviews treatment plans in the provider portal."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider"
    )
    account_name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.account_name


class Case(AlignCaseMixin, models.Model):
    """A patient's aligner case.  The app finds it by ``uuid`` in its URLs."""

    NEW = "NEW"
    IN_PROVIDER_PORTAL = "IN_PROVIDER_PORTAL"
    STATUSES = [(NEW, "New"), (IN_PROVIDER_PORTAL, "In the provider portal")]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case_number = models.CharField(max_length=32, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="cases")
    status = models.CharField(max_length=32, choices=STATUSES, default=NEW)

    class Meta:
        ordering = ["case_number"]

    def __str__(self) -> str:
        return self.case_number


class Prescription(models.Model):
    """The case's prescription: which lab makes the aligners, which provider signs."""

    ALIGN, OTHER = "AL", "OT"
    LABS = [(ALIGN, "Align"), (OTHER, "Other lab")]

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="prescription")
    lab = models.CharField(max_length=2, choices=LABS, default=ALIGN)
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="prescriptions"
    )

    def __str__(self) -> str:
        return f"Prescription of {self.case}"


class PhotoAssessment(models.Model):
    """Staff's assessment of the patient's photos: approved, and with which treatment."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="photo_assessment")
    approved = models.BooleanField(default=False)
    treatment_option = models.CharField(max_length=32, default="full")

    def __str__(self) -> str:
        return f"Photo assessment of {self.case}"
