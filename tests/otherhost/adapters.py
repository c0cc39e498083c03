"""The other host's adapter: every method the contract names, over its own names."""

from __future__ import annotations

from typing import Any

from align_integration.adapters import CaseAdapter, PatientData
from tests.otherhost.models import Treatment


class TreatmentAdapter(CaseAdapter):
    def get_case(self, case_ref: str) -> Any:
        treatment = Treatment.objects.filter(reference=str(case_ref)).first()
        if treatment is None:
            raise LookupError(case_ref)
        return treatment

    def case_reference(self, case: Any) -> str:
        return case.reference

    def patient(self, case: Any) -> PatientData:
        customer = case.customer
        return PatientData(
            first_name=customer.given_name,
            last_name=customer.family_name,
            date_of_birth=customer.birth_date,
            gender={"male": "M", "female": "F"}.get(customer.sex or "", "U"),
            mrn=customer.chart_number,
        )

    def lab_is_align(self, case: Any) -> bool:
        return case.lab_code == "ALIGN"

    def photo_assessment_approved(self, case: Any) -> bool:
        return case.photos_ok

    def treatment_option(self, case: Any) -> str:
        return case.plan_option

    def provider_can_act(self, user: Any, case: Any) -> bool:
        return user.is_authenticated and case.dentist.account_id == user.pk

    def match_scan(self, order: dict[str, Any]) -> Any:
        chart = ((order.get("patient") or {}).get("chartNumber")) or ""
        return Treatment.objects.filter(customer__chart_number=chart).first()

    def on_treatment_plan_ready(self, case: Any) -> None:
        case.stage = "plan-review"
        case.save(update_fields=["stage"])
