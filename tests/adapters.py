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
