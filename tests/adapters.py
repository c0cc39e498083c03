"""Adapters the tests plug in through ``CASE_ADAPTER``."""

from __future__ import annotations

from typing import Any

from align_integration.adapters import CaseAdapter


class StatusMovingAdapter(CaseAdapter):
    """Moves the host case into the provider portal when a plan arrives."""

    def on_treatment_plan_ready(self, case: Any) -> None:
        case.status = "IN_PROVIDER_PORTAL"
        case.save(update_fields=["status"])


class BrokenPortalAdapter(CaseAdapter):
    """A host hook that fails (with a message that must not be stored)."""

    def on_treatment_plan_ready(self, case: Any) -> None:
        raise RuntimeError("Secret patient Zebulon failed")


class CaseNumberAdapter(CaseAdapter):
    """A host that sends its case number as caseId and keeps loosely typed patient data."""

    def case_reference(self, case: Any) -> str:
        return case.case_number

    def patient(self, case: Any) -> Any:
        from align_integration.adapters import PatientData

        patient = case.patient
        return PatientData(
            first_name=patient.first_name,
            last_name=patient.last_name,
            date_of_birth=patient.date_of_birth.isoformat(),  # a string, not a date
            gender="female",
            mrn=patient.medical_record_number,
        )


class NotingAdapter(CaseAdapter):
    """The default mapping, writing the app's notes as the host's own case notes."""

    def add_case_note(self, case: Any, text: str, user: Any) -> None:
        from tests.testapp.models import CaseNote

        CaseNote.objects.create(case=case, text=text, user=user)

    def on_treatment_plan_ready(self, case: Any) -> None:
        case.status = "IN_PROVIDER_PORTAL"
        case.save(update_fields=["status"])


class VaultHostAdapter(NotingAdapter):
    """A host with its own scan storage and its own vault (tests.testapp.models), a chief
    concern of its own, and case notes: every cutover adapter method overridden."""

    def stl_files(self, case: Any) -> Any:
        from align_integration.adapters import AssetRef

        return [
            AssetRef(name=scan.name, vault_id=scan.vault_id, external_key=scan.external_key)
            for scan in case.scan_files.filter(removed=False).order_by("pk")
        ]

    def store_acceptance_screenshot(self, case: Any, jpeg: bytes, user: Any) -> Any:
        from align_integration.adapters import AssetRef
        from tests.testapp.models import VaultScreenshot

        number = VaultScreenshot.objects.count() + 1
        shot = VaultScreenshot.objects.create(
            case=case,
            vault_id=f"VAULT-{case.pk}-{number}",
            external_key=f"vault/screens/{case.pk}/{number}.jpg",
            content=jpeg,
        )
        return AssetRef(
            name="acceptance.jpg", vault_id=shot.vault_id, external_key=shot.external_key
        )

    def chief_concern(self, case: Any) -> str:
        return f"Crowding ({case.photo_assessment.treatment_option})"


class FailingNotesAdapter(CaseAdapter):
    """A host whose case notes fail: with patient data in the message, and in the database."""

    def add_case_note(self, case: Any, text: str, user: Any) -> None:
        from django.db import connection

        with connection.cursor() as cursor:  # a failed statement inside the transaction
            cursor.execute("SELECT * FROM no_such_case_note_table")
        raise RuntimeError(f"note for {case.patient.last_name} failed")  # pragma: no cover


class CaseNumberLookupAdapter(CaseAdapter):
    """A host whose URLs name cases by their case number only."""

    def get_case(self, case_ref: str) -> Any:
        found = self.case_model._default_manager.filter(case_number=str(case_ref)).first()
        if found is None:
            raise LookupError("no case with that number")
        return found


class BrokenBulkLookupAdapter(CaseAdapter):
    """A host whose bulk case lookup fails: the batch falls back to one lookup per row."""

    def get_cases(self, case_refs: Any) -> dict[str, Any]:
        raise RuntimeError("the bulk lookup is down")


class OneBrokenLookupAdapter(CaseAdapter):
    """A host whose own ``get_case`` breaks (not ``LookupError``) on one reference."""

    BROKEN = "breaks-the-lookup"

    def get_case(self, case_ref: str) -> Any:
        if case_ref == self.BROKEN:
            raise RuntimeError("the host's lookup broke")
        return super().get_case(case_ref)


class BrokenSQLBulkLookupAdapter(CaseAdapter):
    """A host whose bulk case lookup fails on the database (a query PostgreSQL refuses)."""

    def get_cases(self, case_refs: Any) -> dict[str, Any]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM align_no_such_table")
        return {}
