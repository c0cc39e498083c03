"""A host project's case models, shaped like the seeds' (the default adapter's names)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from align_integration.cases import AlignCaseMixin


class Patient(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=1, default="U")
    medical_record_number = models.CharField(max_length=64, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")


class Provider(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    account_name = models.CharField(max_length=100, default="")


class Case(AlignCaseMixin, models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case_number = models.CharField(max_length=32, blank=True, default="")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="cases")
    status = models.CharField(max_length=32, default="NEW")


class Prescription(models.Model):
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="prescription")
    lab = models.CharField(max_length=2, default="AL")
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.SET_NULL)


class PhotoAssessment(models.Model):
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="photo_assessment")
    approved = models.BooleanField(default=False)
    treatment_option = models.CharField(max_length=32, default="full")


# -- a host that keeps its scans, screenshots and case notes in its own tables --------------
class ScanFile(models.Model):
    """A scan file in the host's own storage (tests.adapters.VaultHostAdapter reads it)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="scan_files")
    name = models.CharField(max_length=100)
    vault_id = models.CharField(max_length=64)
    external_key = models.CharField(max_length=255)
    removed = models.BooleanField(default=False)


class VaultScreenshot(models.Model):
    """An acceptance screenshot kept in the host's vault, with the vault's own ids."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="vault_screenshots")
    vault_id = models.CharField(max_length=64, unique=True)
    external_key = models.CharField(max_length=255)
    content = models.BinaryField()


class CaseNote(models.Model):
    """The host's case notes, where its staff look (the old tool wrote one per outcome)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
