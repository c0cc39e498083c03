"""Helpers of the cutover tests: what Align holds already, callbacks, patient values, the
old tool's tables.

``align_holds`` seeds the sandbox (the test kit's ``seed_patient``/``seed_order``) with a
case as the old tool left it at Align, before the app ever sent it.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.urls import reverse

from tests.webhook_cases import post_signed, signed_headers


def align_holds(
    sandbox: Any,
    case_id: str,
    *,
    mrn: str = "MRN-OLD",
    patients: int = 1,
    orders: int = 1,
    patient_ids: list[str] | None = None,
    order_patient: str | None = None,
) -> list[str]:
    """Make the sandbox hold ``patients`` patients and ``orders`` IAS orders for ``case_id``
    (as created by the old tool); returns the patient ids."""
    ids = list(patient_ids or [])
    while len(ids) < patients:
        ids.append(f"P-OLD-{case_id}-{len(ids) + 1}")
    for patient_id in ids[:patients]:
        sandbox.seed_patient(case_id, patient_id=patient_id, mrn=mrn)
    holder = order_patient or ids[0]
    for number in range(orders):
        sandbox.seed_order(
            case_id, patient_id=holder, order_id=f"O-OLD-{case_id}-{number + 1}", mrn=mrn
        )
    return ids[:patients]


def held_at_align(sandbox: Any, case_id: str) -> tuple[int, int]:
    """(patients, orders) the sandbox holds for ``case_id``."""
    return (
        sum(1 for p in sandbox.patients if p["caseId"] == case_id),
        sum(1 for o in sandbox.orders if o["caseId"] == case_id),
    )


def send_callback(event_type: str, data: dict[str, Any], secret: str) -> Any:
    """Post one signed Align callback to the app, as the integration service would."""
    body = json.dumps({"type": event_type, "timestamp": "2026-11-20T10:00:00Z", "data": data})
    return post_signed(
        Client(), reverse("align_integration:callbacks"), body, signed_headers(body, secret)
    )


def patient_values(*cases: Any) -> list[str]:
    """Every patient value of ``cases`` that must never reach a log, note or timeline."""
    values: list[str] = []
    for case in cases:
        patient = case.patient
        values += [
            patient.first_name,
            patient.last_name,
            patient.medical_record_number,
            patient.email,
            patient.phone,
        ]
        if patient.date_of_birth:
            values.append(patient.date_of_birth.isoformat())
    return [value for value in values if value]


# -- the old tool's tables ------------------------------------------------------------------
LEGACY_DDL = {
    "cases_align_orders": """CREATE TABLE cases_align_orders (
        id integer PRIMARY KEY, case_id integer NOT NULL, order_type varchar(16),
        sales_order_number varchar(64), pid varchar(64), date_created timestamp with time zone
    )""",
    "cases_case_asset": """CREATE TABLE cases_case_asset (
        id integer PRIMARY KEY, case_id integer NOT NULL, kind varchar(32), vault_id varchar(64),
        external_key varchar(255), date_created timestamp with time zone,
        date_removed timestamp with time zone
    )""",
}


def create_legacy_tables(**extra_ddl: str) -> None:
    """The old tool's tables (and any ``name=DDL`` given), empty, in the test database."""
    from django.db import connection

    with connection.cursor() as cursor:
        for name, ddl in {**LEGACY_DDL, **extra_ddl}.items():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(ddl)


def insert_rows(table: str, rows: list[tuple[Any, ...]]) -> None:
    from django.db import connection

    marks = ", ".join(["%s"] * len(rows[0]))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
