"""Shared set-up for the benchmark scripts: Django settings for a bench host, a PostgreSQL
database of their own, cases ready for a ClinCheck accept, and the sandbox served by a
process of its own (as the real service runs on another machine, its work does not compete
with the measured code for the measuring process's interpreter)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure_django(cache: dict[str, Any] | None = None, service_url: str = "") -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "waffle",
            "align_integration",
            "tests.testapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": cache or {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        ALIGN_INTEGRATION_CASE_MODEL="testapp.Case",
        ALIGN_INTEGRATION={
            "SERVICE": {
                "BASE_URL": service_url,
                "CLIENT_ID": "sandbox-client",
                "CLIENT_SECRET": "sandbox-secret",
            }
        },
        LOGGING_CONFIG=None,
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "")
    django.setup()
    # The clients read the kill switch (a waffle switch) before every request; with its
    # table there, waffle answers from the cache as it does in a deployment.
    from django.core.management import call_command

    call_command("migrate", "waffle", verbosity=0)


def machine() -> str:
    """The CPUs and the load before a run: a ratio measured on a busy machine is read with it
    (the measured command shares the CPUs with its database and the sandbox)."""
    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} (1 min), {five:.2f} (5 min)"


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def recreate_postgres_database(database: dict[str, Any]) -> None:
    """Drop and create the PostgreSQL database of a Django ``DATABASES`` entry."""
    import psycopg

    admin = psycopg.connect(
        host=database["HOST"],
        port=database["PORT"] or 5432,
        user=database["USER"],
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{database["NAME"]}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{database["NAME"]}"')
    admin.close()


def accept_ready_cases(
    count: int, mrn_prefix: str, *, sent: bool = False
) -> tuple[list[Any], list[Any], list[Any], list[dict[str, Any]]]:
    """``count`` Align cases with an acceptance screenshot (``sent``: with the ids Align
    gave them): (cases, patients, screenshots, their orders as the sandbox keeps them)."""
    from align_integration.models import AlignCase, CaseAsset
    from tests.testapp.models import Case, Patient, Prescription

    patients = Patient.objects.bulk_create(
        Patient(
            first_name="Bench",
            last_name=f"Patient{i}",
            medical_record_number=f"{mrn_prefix}{i:06d}",
        )
        for i in range(count)
    )
    cases = Case.objects.bulk_create(
        Case(patient=patient, case_number=f"{mrn_prefix}{i:06d}")
        for i, patient in enumerate(patients)
    )
    Prescription.objects.bulk_create(Prescription(case=case, lab="AL") for case in cases)
    if sent:
        AlignCase.objects.bulk_create(
            AlignCase(case=c, align_case_id=str(c.pk), patient_id=f"P-{c.pk}", order_id=f"O-{c.pk}")
            for c in cases
        )
    screenshots = CaseAsset.objects.bulk_create(
        CaseAsset(
            case=case,
            kind=CaseAsset.CCACCEPTSCREEN,
            file=f"screens/{case.pk}.jpg",
            vault_id=f"vault-{case.pk}",
            external_key=f"key-{case.pk}",
        )
        for case in cases
    )
    orders = [
        {
            "caseId": str(case.pk),
            "patientId": f"P-{case.pk}",
            "mrn": patient.medical_record_number,
            "orderType": "IAS",
            "treatmentOption": "full",
            "chiefConcern": "Crowding and spacing",
            "orderId": f"O-{case.pk}",
            "status": "treatment_plan_ready",
            "planVersion": 1,
        }
        for case, patient in zip(cases, patients, strict=True)
    ]
    return cases, patients, screenshots, orders


class RemoteSandbox:
    """The sandbox served by a child process; asked over a pipe for what the tests read."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")  # before Django: nothing else to copy
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_sandbox, args=(child,), daemon=True)
        self._process.start()
        self.url, self.client_id, self.client_secret, self.callback_secret = self._conn.recv()

    def ask(self, *message: Any) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def accepted_case_ids(self) -> list[str]:
        """caseId of every ClinCheck accept received so far, in order."""
        return self.ask("accepts")

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=10)


def _serve_sandbox(conn: Any) -> None:
    from align_integration.sandbox import Sandbox

    sandbox = Sandbox(auto_callbacks=False).start()
    conn.send((sandbox.url, sandbox.client_id, sandbox.client_secret, sandbox.callback_secret))
    while True:
        command, *args = conn.recv()
        if command == "orders":  # orders as the service keeps them after "create order"
            with sandbox.align.lock:
                sandbox.align.orders.extend(args[0])
            conn.send(None)
        elif command == "latency":  # (delay, call="clincheck_accept")
            sandbox.inject_fault(
                args[1] if len(args) > 1 else "clincheck_accept", delay=args[0], times=None
            )
            conn.send(None)
        elif command == "throttle":  # (probability, retry_after, capacity): before latency
            probability, retry_after, capacity = args
            sandbox.clear_faults()
            sandbox.inject_fault(
                "clincheck_accept",
                status=429,
                retry_after=retry_after,
                rate=probability,
                times=None,
            )
            sandbox.limit_in_flight(capacity, retry_after=retry_after)
            conn.send(None)
        elif command == "unthrottle":
            sandbox.clear_faults()
            sandbox.limit_in_flight(None)
            conn.send(None)
        elif command == "accepts":
            conn.send([(c.form or {}).get("caseId") for c in sandbox.calls("clincheck_accept")])
        elif command == "calls":  # (call,) -> [(caseId, status, idempotency key)]
            conn.send(
                [
                    ((c.form or c.json or {}).get("caseId"), c.status, c.idempotency_key)
                    for c in sandbox.calls(args[0])
                ]
            )
        elif command == "count":
            conn.send(sandbox.count(args[0]))
        elif command == "counts":  # patients and orders the service holds
            conn.send((len(sandbox.patients), len(sandbox.orders)))
        else:
            sandbox.stop()
            conn.send(None)
            return
