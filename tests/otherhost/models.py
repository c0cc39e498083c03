"""A different host project: other model names, other field names, a UUID primary key."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Customer(models.Model):
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, null=True, blank=True)  # "male", "female" or None
    chart_number = models.CharField(max_length=40, unique=True)


class Dentist(models.Model):
    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)


class Treatment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT)
    dentist = models.ForeignKey(Dentist, on_delete=models.PROTECT)
    lab_code = models.CharField(max_length=10, default="ALIGN")
    photos_ok = models.BooleanField(default=False)
    plan_option = models.CharField(max_length=20, default="comprehensive")
    stage = models.CharField(max_length=30, default="intake")
