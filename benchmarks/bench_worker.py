"""Benchmark: ``align_worker --loop`` processes draining a backlog on PostgreSQL, and crash
takeover after a SIGKILL.

10 000 due ClinCheck accepts (retries whose time has come) are drained by 1, 2 and 4
``align_worker`` processes against the sandbox, which takes 50 ms per accept and runs in a
process of its own.  Reports operations/s per worker count (first to last finish), the rise
from 1 to 4 workers (target >= 3x), and double attempts counted at the sandbox (an
idempotency key sent twice; must be 0).  Then a worker is killed (SIGKILL) while its
create-patient call is in flight, another one is running with the default settings, and
the time from the kill to the case being sent is reported (target < 180 s).

    .venv/bin/python benchmarks/bench_worker.py                    # about 30 minutes
    .venv/bin/python benchmarks/bench_worker.py --operations 1000  # a quick look

The database is its own (``BENCH_DATABASE_URL``, default ``align_bench_worker``): dropped
and created anew.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _setup import (  # noqa: E402 - after the path is set
    RemoteSandbox,
    accept_ready_cases,
    machine,
    recreate_postgres_database,
)

LATENCY = 0.05
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/align_bench_worker"


def prepare_database(url: str) -> None:
    import dj_database_url

    recreate_postgres_database(dj_database_url.parse(url))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_cases(sandbox: RemoteSandbox, count: int) -> list[int]:
    """``count`` sent cases with an acceptance screenshot and an order at the sandbox."""
    cases, _, _, orders = accept_ready_cases(count, "W", sent=True)
    sandbox.ask("orders", orders)
    return [case.pk for case in cases]


def make_due(case_pks: list[int]) -> None:
    """One due ClinCheck accept per case (the ones of an earlier round removed)."""
    from django.utils import timezone

    from align_integration.models import CaseAsset, CaseEvent, RemoteOperation

    CaseEvent.objects.all().delete()
    RemoteOperation.objects.all().delete()
    assets = dict(CaseAsset.objects.filter(case_id__in=case_pks).values_list("case_id", "pk"))
    due = timezone.now() - dt.timedelta(seconds=5)
    RemoteOperation.objects.bulk_create(
        RemoteOperation(
            case_id=pk,
            kind=RemoteOperation.CLINCHECK_ACCEPT,
            dedupe_key=f"clincheck_accept:{pk}:{assets[pk]}",
            payload={"asset_id": assets[pk]},
            state=RemoteOperation.RETRY_SCHEDULED,
            next_attempt_at=due,
            attempts=1,
        )
        for pk in case_pks
    )


def worker_env(sandbox: RemoteSandbox, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        "BENCH_DATABASE_URL": url,
        "BENCH_SERVICE_URL": sandbox.url,
        "BENCH_CLIENT_ID": sandbox.client_id,
        "BENCH_CLIENT_SECRET": sandbox.client_secret,
        "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent}",
    }


def start_worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", "align_worker", "--loop", "--no-itero", *extra],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain(env: dict[str, str], case_pks: list[int], workers: int) -> tuple[float, float]:
    """(operations/s from the first finish to the last, wall seconds) for ``workers``."""
    from django.db.models import Max, Min

    from align_integration.models import RemoteOperation

    make_due(case_pks)
    started = time.monotonic()
    processes = [start_worker(env, "--interval", "1", "--limit", "50") for _ in range(workers)]
    try:
        pending = RemoteOperation.objects.exclude(state=RemoteOperation.SUCCEEDED)
        while pending.exists():
            time.sleep(1)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
    wall = time.monotonic() - started
    span = RemoteOperation.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return len(case_pks) / seconds, wall


def takeover(sandbox: RemoteSandbox, env: dict[str, str]) -> float:
    """Seconds from a SIGKILL mid create-patient call to the case being sent, defaults."""
    from django.utils import timezone

    from align_integration.models import AlignCase, CaseAsset, RemoteOperation
    from align_integration.workflows.operations import operation_for
    from tests.testapp.models import Case, Patient, PhotoAssessment, Prescription

    RemoteOperation.objects.all().delete()
    patient = Patient.objects.create(
        first_name="Crash", last_name="Test", medical_record_number="CRASH-1", gender="F",
        date_of_birth=dt.date(1990, 1, 1),
    )  # fmt: skip
    case = Case.objects.create(patient=patient)
    Prescription.objects.create(case=case, lab="AL")
    PhotoAssessment.objects.create(case=case, approved=True, treatment_option="full")
    for index in range(2):
        CaseAsset.objects.create(case=case, kind=CaseAsset.STL, file=f"scans/{case.pk}-{index}.stl")
    operation = operation_for(case, RemoteOperation.CREATE_PATIENT, f"create_patient:{case.pk}")
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at=timezone.now()
    )
    sandbox.ask("latency", 1.5, "create_patient")  # answers late, acts all the same
    doomed = start_worker(env, "--interval", "1")
    while sandbox.ask("count", "create_patient") < 1:
        time.sleep(0.05)
    os.kill(doomed.pid, signal.SIGKILL)
    killed = time.monotonic()
    doomed.wait()
    taker = start_worker(env)  # the defaults: --interval 10, claim 120 s, takeover 30 s
    try:
        sent = AlignCase.objects.filter(case=case, assets_uploaded_at__isnull=False)
        while not sent.exists():
            time.sleep(0.5)
        return time.monotonic() - killed
    finally:
        taker.send_signal(signal.SIGTERM)
        taker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-takeover", action="store_true", help="Skip the SIGKILL run.")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)

    sandbox = RemoteSandbox()
    try:
        os.environ["BENCH_DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
        os.environ["BENCH_SERVICE_URL"] = sandbox.url
        prepare_database(url)
        case_pks = seed_cases(sandbox, args.operations)
        sandbox.ask("latency", LATENCY)
        env = worker_env(sandbox, url)
        print(machine())
        print(
            f"{args.operations} due ClinCheck accepts, {LATENCY * 1000:.0f} ms per accept at "
            "the sandbox, align_worker --loop --limit 50 processes, PostgreSQL\n"
        )
        print(f"{'workers':>8} {'ops/s':>8} {'wall s':>8} {'calls':>7} {'double':>7}")
        rates: dict[int, float] = {}
        for workers in args.workers:
            before = len(sandbox.ask("calls", "clincheck_accept"))
            rate, wall = drain(env, case_pks, workers)
            calls = sandbox.ask("calls", "clincheck_accept")[before:]
            keys = Counter(key for _, _, key in calls)
            double = sum(n - 1 for n in keys.values())
            rates[workers] = rate
            print(f"{workers:>8} {rate:8.1f} {wall:8.1f} {len(calls):7d} {double:7d}")
        if 1 in rates and 4 in rates:
            rise = rates[4] / rates[1]
            print(f"\nrise 1 -> 4 workers: {rise:.2f}x (target >= 3x)")
        if not args.no_takeover:
            seconds = takeover(sandbox, env)
            patients, orders = sandbox.ask("counts")
            print(
                f"takeover after SIGKILL mid-call (default settings): {seconds:.0f} s "
                f"(target < 180 s); sandbox holds {patients} patient, "
                f"{orders - args.operations} new order"
            )
    finally:
        sandbox.stop()
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    main()
