"""``python demo/manage.py seed_drift``: cases whose Align ids drifted, for ``align_reconcile``.

Needs the sandbox running (``demo/run.py`` starts it, then runs this).  Makes five demo
cases, DEMO-101 to DEMO-105, as if the app had sent them, and tells the sandbox (over its
control API, ``/__sandbox__/align/…``) to hold, or not hold, their patients and orders:

| case | the app holds | the sandbox (Align) holds | reconcile says | ``--fix`` |
| --- | --- | --- | --- | --- |
| DEMO-101 | patient and order | the same | in step | — |
| DEMO-102 | nothing | a patient and its order | at Align, unknown here | adopts both |
| DEMO-103 | nothing | two patients | at Align, unknown here | nothing (ambiguous) |
| DEMO-104 | patient and order | nothing | here, not at Align | nothing (never creates) |
| DEMO-105 | a stale patient id; the order | another patient; the order | conflicting ids | adopts |

Safe to run again: what the sandbox already holds for a case is not made twice, and the
app's ids are set back as above (so running it after ``align_reconcile --fix`` brings the
drift back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from align_integration.adapters import get_adapter
from align_integration.models import AlignCase
from cases.management.commands.seed_demo import Command as SeedDemo
from cases.management.commands.seed_demo import DemoCase
from cases.models import Prescription, Provider


@dataclass(frozen=True)
class Drift:
    """One drift case: the ids the app holds (``IN_STEP``: Align's) and how many patients,
    and orders of the first ones, Align holds."""

    case: DemoCase
    patient_here: str
    order_here: str
    align_patients: int
    align_orders: int


def _case(number: int, first: str, last: str, story: str) -> DemoCase:
    return DemoCase(
        case_number=f"DEMO-{number}",
        first_name=first,
        last_name=last,
        mrn=f"DEMO-MRN-{number}",
        gender="F",
        lab=Prescription.ALIGN,
        approved=True,
        stl_files=2,
        story=story,
    )


#: "The app holds what Align holds" (DEMO-101).
IN_STEP = "="

DRIFTS = (
    Drift(_case(101, "Steady", "Instep", "in step with Align"), IN_STEP, IN_STEP, 1, 1),
    Drift(_case(102, "Unknown", "Here", "at Align, unknown here (fixable)"), "", "", 1, 1),
    Drift(_case(103, "Double", "Trouble", "two patients at Align (ambiguous)"), "", "", 2, 0),
    Drift(_case(104, "Gone", "Missing", "here, not at Align"), "P-GONE-104", "O-GONE-104", 0, 0),
    Drift(
        _case(105, "Stale", "Idholder", "conflicting ids (fixable)"), "P-STALE-105", IN_STEP, 1, 1
    ),
)


class Command(BaseCommand):
    help = "Seed cases whose Align ids drifted from the sandbox's (for align_reconcile)."

    def handle(self, *args: Any, **options: Any) -> None:
        control = f"{settings.SANDBOX_URL}/__sandbox__"
        try:
            state = requests.get(f"{control}/state", timeout=10).json()["align"]
        except (requests.RequestException, ValueError, KeyError) as error:
            raise CommandError(f"the sandbox does not answer at {control}: {error}") from None
        held: dict[str, tuple[list[str], list[str]]] = {}
        for patient in state["patients"]:
            held.setdefault(patient["caseId"], ([], []))[0].append(patient["patientId"])
        for order in state["orders"]:
            held.setdefault(order["caseId"], ([], []))[1].append(order["orderId"])
        provider = Provider.objects.get(user__username="provider")
        adapter = get_adapter()
        for drift in DRIFTS:
            case = SeedDemo().seed_case(drift.case, provider)
            case_id = adapter.case_reference(case)
            patients, orders = held.get(case_id, ([], []))
            if not patients:  # the sandbox holds nothing for the case yet: make what it needs
                for number in range(drift.align_patients):
                    patients.append(self.post(f"{control}/align/patients", {"case_id": case_id}))
                    if number < drift.align_orders:
                        body = {"case_id": case_id, "patient_id": patients[-1]}
                        orders.append(self.post(f"{control}/align/orders", body))
            patient_here = patients[0] if drift.patient_here == IN_STEP else drift.patient_here
            order_here = (orders or [""])[0] if drift.order_here == IN_STEP else drift.order_here
            AlignCase.objects.for_case(case)
            AlignCase.objects.filter(case=case).update(
                patient_id=patient_here,
                order_id=order_here,
                align_case_id=case_id if patient_here else "",
                assets_uploaded_at=timezone.now() if patient_here else None,
            )
            self.stdout.write(f"  {case.case_number} (caseId {case_id}): {drift.case.story}")
        self.stdout.write(
            self.style.SUCCESS(
                "Drift seeded: python demo/manage.py align_reconcile --report drift.csv"
            )
        )

    def post(self, url: str, body: dict[str, str]) -> str:
        answer = requests.post(url, json=body, timeout=10)
        if answer.status_code != 200:
            raise CommandError(f"the sandbox answered {answer.status_code} to {url}")
        return str(next(iter(answer.json().values())))
