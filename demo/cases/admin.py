"""Admin for the demo's models (the app registers its own read-only admin for its tables)."""

from __future__ import annotations

from django.contrib import admin

from cases.models import Case, Patient, PhotoAssessment, Prescription, Provider


class PrescriptionInline(admin.StackedInline):
    model = Prescription


class PhotoAssessmentInline(admin.StackedInline):
    model = PhotoAssessment


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["case_number", "patient", "status"]
    list_filter = ["status", "prescription__lab"]
    readonly_fields = ["uuid"]
    inlines = [PrescriptionInline, PhotoAssessmentInline]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["medical_record_number", "first_name", "last_name", "gender"]
    list_editable = ["gender"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["account_name", "user"]
