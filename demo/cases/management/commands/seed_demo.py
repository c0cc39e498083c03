"""``python demo/manage.py seed_demo [--reset]``: the demo's users, flags and cases.

Idempotent: running it again creates nothing twice and keeps what people changed (a
patient's gender, a case sent to Align).  ``--reset`` first deletes the demo cases with
everything the app recorded for them, for a fresh start (``demo/run.py`` does that,
because the sandbox it starts remembers nothing from an earlier run).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from waffle.models import Flag

from align_integration.models import CallbackEvent, CaseAsset
from cases.models import Case, Patient, PhotoAssessment, Prescription, Provider

FLAGS = ("initiate-align-order", "set-align-order-status")
#: Seeded off, so the demo can show turning hands-free sending on (docs/demo.md).
FLAGS_OFF = ("auto-send-to-align",)
CASE_PREFIX = "DEMO-"
#: The group docs/migration.md recommends, holding the app's own permissions (the demo's
#: staff login is also a superuser, for the admin; the group shows the least-privilege way).
STAFF_GROUP = "Align coordinators"
STAFF_PERMISSIONS = ("send_to_align", "manage_itero_connection")


@dataclass(frozen=True)
class DemoCase:
    """One seeded case and the patient it belongs to (all names obviously made up)."""

    case_number: str
    first_name: str
    last_name: str
    mrn: str
    gender: str
    lab: str
    approved: bool
    stl_files: int
    story: str


DEMO_CASES = (
    DemoCase(
        case_number="DEMO-001",
        first_name="Testy",
        last_name="McTestface",
        mrn="DEMO-MRN-001",
        gender="F",
        lab=Prescription.ALIGN,
        approved=True,
        stl_files=2,
        story="eligible: Align lab, photos approved, 2 STL files",
    ),
    DemoCase(
        case_number="DEMO-002",
        first_name="Sample",
        last_name="Unknowngender",
        mrn="DEMO-MRN-002",
        gender="U",
        lab=Prescription.ALIGN,
        approved=True,
        stl_files=2,
        story="eligible, gender unknown (sent as DEFAULT_GENDER unless staff set it)",
    ),
    DemoCase(
        case_number="DEMO-003",
        first_name="Ima",
        last_name="Placeholder",
        mrn="DEMO-MRN-003",
        gender="M",
        lab=Prescription.ALIGN,
        approved=False,
        stl_files=1,
        story="not eligible: only 1 STL file, photos not approved",
    ),
    DemoCase(
        case_number="DEMO-004",
        first_name="Fictional",
        last_name="Person",
        mrn="DEMO-MRN-004",
        gender="F",
        lab=Prescription.OTHER,
        approved=True,
        stl_files=2,
        story="not eligible: the prescription names another lab",
    ),
    DemoCase(
        case_number="DEMO-005",
        first_name="Scanny",
        last_name="Waitsalot",
        mrn="DEMO-MRN-005",
        gender="M",
        lab=Prescription.ALIGN,
        approved=True,
        stl_files=0,
        story="waiting for scans: take an iTero scan (sandbox) and its STL files make it eligible",
    ),
)


def stl_bytes(name: str, offset: int) -> bytes:
    """A tiny but real ASCII STL: one tetrahedron (4 facets)."""
    a, b, c, d = (0, 0, 0), (10, 0, 0), (0, 10, 0), (0, 0, 10)
    facets = [
        ((0, 0, -1), (a, c, b)),
        ((0, -1, 0), (a, b, d)),
        ((-1, 0, 0), (a, d, c)),
        ((0.57735, 0.57735, 0.57735), (b, c, d)),
    ]
    lines = [f"solid {name}"]
    for normal, vertices in facets:
        lines.append(" facet normal {} {} {}".format(*normal))
        lines.append("  outer loop")
        for x, y, z in vertices:
            lines.append(f"   vertex {x + offset} {y} {z}")
        lines.append("  endloop")
        lines.append(" endfacet")
    lines.append(f"endsolid {name}")
    return ("\n".join(lines) + "\n").encode("ascii")


class Command(BaseCommand):
    help = "Create the demo's users, waffle flags and cases (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo cases and everything recorded for them first",
        )

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        if reset:
            self.reset()
        with transaction.atomic():
            self.seed_users()
            for name in FLAGS:
                Flag.objects.update_or_create(name=name, defaults={"everyone": True})
            for name in FLAGS_OFF:
                Flag.objects.get_or_create(name=name, defaults={"everyone": False})
            provider = Provider.objects.get(user__username="provider")
            for demo in DEMO_CASES:
                case = self.seed_case(demo, provider)
                self.stdout.write(f"  {case.case_number} ({case.uuid}): {demo.story}")
        self.stdout.write(
            self.style.SUCCESS("Demo data ready: logins staff/staff, provider/provider")
        )

    def reset(self) -> None:
        cases = list(Case.objects.filter(case_number__startswith=CASE_PREFIX))
        for asset in CaseAsset.objects.filter(case__in=cases):
            asset.file.delete(save=False)
        CallbackEvent.objects.filter(case_reference__in=[str(c.pk) for c in cases]).delete()
        for case in cases:
            case.delete()  # cascades to the prescription and the app's rows for the case
        Patient.objects.filter(medical_record_number__startswith="DEMO-MRN-").delete()
        self.stdout.write(f"Deleted {len(cases)} demo case(s).")

    def seed_users(self) -> None:
        user_model = get_user_model()
        staff, _ = user_model.objects.get_or_create(username="staff")
        staff.is_staff = staff.is_superuser = True
        staff.email = "staff@example.test"
        staff.set_password("staff")
        staff.save()
        group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="align_integration", codename__in=STAFF_PERMISSIONS
            )
        )
        staff.groups.add(group)
        user, _ = user_model.objects.get_or_create(username="provider")
        user.first_name, user.last_name = "Dee", "Mo"
        user.email = "provider@example.test"
        user.set_password("provider")
        user.save()
        Provider.objects.get_or_create(user=user, defaults={"account_name": "Demo Smiles Dental"})

    def seed_case(self, demo: DemoCase, provider: Provider) -> Case:
        index = int(demo.case_number.rsplit("-", 1)[1])
        patient, _ = Patient.objects.get_or_create(
            medical_record_number=demo.mrn,
            defaults={
                "first_name": demo.first_name,
                "last_name": demo.last_name,
                "date_of_birth": dt.date(1990, 1, 1) + dt.timedelta(days=400 * index),
                "gender": demo.gender,
                "email": f"{demo.first_name.lower()}@example.test",
                "phone": f"555-01{index:02d}",
            },
        )
        case, _ = Case.objects.get_or_create(
            case_number=demo.case_number, defaults={"patient": patient}
        )
        Prescription.objects.get_or_create(
            case=case, defaults={"lab": demo.lab, "provider": provider}
        )
        PhotoAssessment.objects.get_or_create(
            case=case, defaults={"approved": demo.approved, "treatment_option": "full"}
        )
        current = CaseAsset.objects.current().filter(case=case, kind=CaseAsset.STL).count()
        for number in range(current, demo.stl_files):
            content = stl_bytes(f"{case.case_number.lower()}-arch-{number + 1}", number * 20)
            asset = CaseAsset(
                case=case,
                kind=CaseAsset.STL,
                content_type="model/stl",
                size=len(content),
                source="demo-seed",
            )
            asset.file.save(f"arch-{number + 1}.stl", ContentFile(content), save=True)
        return case
