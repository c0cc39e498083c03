"""Benchmark: ``align_clincheck_accept --concurrency 16`` (no other option) against the old
ad-hoc script's loop, and the same command against a service that throttles.

Both run in one process against the sandbox, with 100 ms of latency injected into every
ClinCheck accept, on the same CSV: the seed query's export (11 columns, the old script reads
them by position) plus a ``case_id`` column holding the case reference the command resolves.

    .venv/bin/python benchmarks/bench_batch.py              # 2 000 cases (about 6 minutes)
    .venv/bin/python benchmarks/bench_batch.py --cases 200 --throttled-cases 200  # a look

Then two runs on fresh cases against a throttled sandbox (429 with ``Retry-After: 1`` to
10 % of accepts, at most 20 requests in flight): the command as it paces itself, and the
same command with ``--fixed-concurrency``; every case must be accepted exactly once, with
fewer 429s than the fixed run.

The sandbox runs in a process of its own, as the real service runs on another machine: its
work does not compete with the measured code for this process's interpreter.  The database
is PostgreSQL, one of the benchmark's own (``BENCH_DATABASE_URL``, default
``align_bench_batch``, dropped and made anew), or ``BENCH_DATABASE_URL=sqlite``: a SQLite
file in a temporary folder (WAL, immediate transactions), as the first runs used.  Prints a table: wall time, rows per second, remote
calls, and the speed-up; then a re-run of the command, which must make no remote call.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _setup import (  # noqa: E402
    RemoteSandbox,
    accept_ready_cases,
    machine,
    recreate_postgres_database,
)

LATENCY = 0.1
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/align_bench_batch"
THROTTLED_LATENCY = 0.5  # long enough that 32 rows in flight exceed what the sandbox takes
THROTTLE_SHARE = 0.1  # the share of accepts the throttled sandbox answers 429
THROTTLE_RETRY_AFTER = 1
CAPACITY = 20  # requests in flight the throttled sandbox takes; 429 beyond
SEED_COLUMNS = [
    "Order Date",
    "Patient Name",
    "Case Number",
    "Provider Name",
    "Product Name",
    "Order Status",
    "Order Status Date",
    "Case ID",
    "Medical Record Number",
    "Vault ID",
    "External Key",
]


def configure(folder: Path, sandbox: RemoteSandbox, database_url: str) -> None:
    """Django on a PostgreSQL database of the benchmark's own (dropped and made anew)."""
    import dj_database_url
    import django
    from django.conf import settings

    if database_url == "sqlite":  # a file in the temporary folder, as the first runs used
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(folder / "bench.sqlite3"),
            "OPTIONS": {
                "timeout": 60,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    else:
        database = dj_database_url.parse(database_url)
        recreate_postgres_database(database)

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-not-secret",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "waffle",
            "align_integration",
            "tests.testapp",
        ],
        DATABASES={"default": database},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        MEDIA_ROOT=str(folder / "media"),
        ALIGN_INTEGRATION_CASE_MODEL="testapp.Case",
        ALIGN_INTEGRATION={
            "SERVICE": {
                "BASE_URL": sandbox.url,
                "CLIENT_ID": sandbox.client_id,
                "CLIENT_SECRET": sandbox.client_secret,
            },
            "CALLBACK_SECRETS": [sandbox.callback_secret],
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(sandbox: RemoteSandbox, count: int, csv_path: Path) -> None:
    """``count`` cases with an acceptance screenshot, each with an order at the sandbox."""
    cases, patients, assets, orders = accept_ready_cases(count, "MRN")
    # The orders are set at the sandbox directly: only the accepts are measured.
    sandbox.ask("orders", orders)
    with csv_path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*SEED_COLUMNS, "case_id"])
        for case, patient, asset in zip(cases, patients, assets, strict=True):
            writer.writerow(
                [
                    "2024-05-01 10:00",
                    "Bench Patient",
                    case.case_number,
                    "Dr Bench",
                    "Aligners",
                    "Processing",
                    "2024-05-02 10:00",
                    case.pk,
                    patient.medical_record_number,
                    asset.vault_id,
                    asset.external_key,
                    case.uuid,
                ]
            )


def old_script_loop(csv_path: Path, base_url: str, logger: logging.Logger) -> int:
    """The seed's ``forwards_func``, as it was: one ``requests.put`` per row, in order (its
    ``str.format`` log lines written as lazy ``%s`` ones; nothing is logged in either case)."""
    import requests

    from align_integration import Align

    total_count = 0
    failed_case_ids = []
    align = Align()
    with open(csv_path) as file:
        cases = list(csv.reader(file))
        cases.pop(0)
        for row in cases:
            try:
                case_id = row[7].strip()
                mrn = row[8].strip()
                vault_id = row[9]
                if vault_id:
                    vault_id = vault_id.strip()
                else:
                    vault_id = "00000000-0000-0000-0000-000000000000"
                external_key = row[10]
                if external_key:
                    external_key = external_key.strip()
                else:
                    external_key = "00000000-0000-0000-0000-000000000000"
                set_case_status_path = base_url + "/orders/" + str(case_id) + "/accept"
                headers = {"Authorization": f"Bearer {align.token}"}
                request_data = {
                    "caseId": case_id,
                    "mrn": mrn,
                    "vault_id": vault_id,
                    "external_key": external_key,
                }
                response = requests.put(set_case_status_path, data=request_data, headers=headers)
                if response.status_code != 200:
                    logger.info("Bad Upload: %s", case_id)
                    logger.info("Response: %s", response.json())
                    logger.info("")
                    failed_case_ids.append(case_id)
                else:
                    logger.info("Upload: %s", case_id)
                    logger.info("Response: %s", response.json())
                    logger.info("")
                total_count += 1
            except Exception as e:
                logger.info(e)
    logger.info("Failed Case IDs: %s", failed_case_ids)
    return len(failed_case_ids)


def run_command(csv_path: Path, report: Path, concurrency: int, *extra: str) -> str:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command(
            "align_clincheck_accept",
            "--csv",
            str(csv_path),
            "--concurrency",
            str(concurrency),
            "--report",
            str(report),
            *extra,
            stdout=out,
            stderr=io.StringIO(),
        )
    except CommandError as error:
        return f"{out.getvalue().strip()} ({error})"
    return out.getvalue().strip()


def throttled_run(
    sandbox: RemoteSandbox, folder: Path, cases: int, concurrency: int, fixed: bool
) -> tuple[str, float, int, int, int, int]:
    """The command on fresh cases while the sandbox throttles: (summary, seconds, 429s,
    accepts, distinct cases accepted, cases)."""
    csv_path = folder / f"throttled-{'fixed' if fixed else 'adaptive'}.csv"
    seed(sandbox, cases, csv_path)
    sandbox.ask("throttle", THROTTLE_SHARE, THROTTLE_RETRY_AFTER, CAPACITY)
    sandbox.ask("latency", THROTTLED_LATENCY)  # after the throttle: one not refused waits
    before = len(sandbox.ask("calls", "clincheck_accept"))
    started = time.monotonic()
    extra = ("--fixed-concurrency",) if fixed else ()
    summary = run_command(csv_path, folder / "report-throttled.csv", concurrency, *extra)
    seconds = time.monotonic() - started
    calls = sandbox.ask("calls", "clincheck_accept")[before:]
    sandbox.ask("unthrottle")
    refused = sum(1 for _, status, _ in calls if status == 429)
    accepted = [case_id for case_id, status, _ in calls if status == 200]
    return summary, seconds, refused, len(accepted), len(set(accepted)), cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--throttled-cases", type=int, default=500, help="cases per throttled run (0: skip)"
    )
    parser.add_argument(
        "--throttled-concurrency",
        type=int,
        default=32,
        help="--concurrency of the throttled runs: above what the sandbox takes at once",
    )
    args = parser.parse_args()

    sandbox = RemoteSandbox()
    folder = Path(tempfile.mkdtemp(prefix="align-bench-"))
    try:
        configure(folder, sandbox, os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
        csv_path = folder / "accept.csv"
        seed(sandbox, args.cases, csv_path)
        sandbox.ask("latency", LATENCY)
        script_logger = logging.getLogger("bench.old_script")  # silent, as in a cron job

        print(machine())
        print(f"{args.cases} cases, {LATENCY * 1000:.0f} ms injected per ClinCheck accept\n")
        before = len(sandbox.accepted_case_ids())
        started = time.monotonic()
        failed = old_script_loop(csv_path, sandbox.url, script_logger)
        old_time = time.monotonic() - started
        old_calls = len(sandbox.accepted_case_ids()) - before

        before = len(sandbox.accepted_case_ids())
        started = time.monotonic()
        summary = run_command(csv_path, folder / "report.csv", args.concurrency)
        new_time = time.monotonic() - started
        calls = sandbox.accepted_case_ids()[before:]
        new_calls = len(calls)
        distinct = len(set(calls))

        before = len(sandbox.accepted_case_ids())
        started = time.monotonic()
        rerun_summary = run_command(csv_path, folder / "report2.csv", args.concurrency)
        rerun_time = time.monotonic() - started
        rerun_calls = len(sandbox.accepted_case_ids()) - before

        rows = [
            ("old script loop (1 at a time)", old_time, old_calls, f"{failed} failed"),
            (
                f"align_clincheck_accept --concurrency {args.concurrency}",
                new_time,
                new_calls,
                f"{distinct} distinct cases",
            ),
            ("same command, re-run", rerun_time, rerun_calls, "all already done"),
        ]
        print(f"{'run':<40} {'wall s':>8} {'rows/s':>8} {'calls':>7}  note")
        for name, seconds, remote, note in rows:
            print(f"{name:<40} {seconds:8.1f} {args.cases / seconds:8.1f} {remote:7d}  {note}")
        print(f"\nspeed-up: {old_time / new_time:.1f}x (target >= 12x), defaults only (no --rate)")
        print(f"remote calls per case: {new_calls / args.cases:.2f} (must be exactly 1)")
        print(f"command: {summary}")
        print(f"re-run:  {rerun_summary}")
        ok = new_calls == distinct == args.cases and rerun_calls == 0

        if args.throttled_cases:
            print(
                f"\nthrottled sandbox: 429 with Retry-After {THROTTLE_RETRY_AFTER} to "
                f"{THROTTLE_SHARE:.0%} of accepts, at most {CAPACITY} requests in flight "
                f"(429 beyond), {THROTTLED_LATENCY * 1000:.0f} ms per accept; "
                f"{args.throttled_cases} fresh cases per run, "
                f"--concurrency {args.throttled_concurrency}\n"
            )
            print(f"{'run':<28} {'wall s':>8} {'429s':>6} {'accepts':>8} {'cases':>6}  summary")
            results = {}
            for fixed in (False, True):
                name = "fixed concurrency" if fixed else "adaptive (the default)"
                result = throttled_run(
                    sandbox, folder, args.throttled_cases, args.throttled_concurrency, fixed
                )
                results[fixed] = result
                text, seconds, refused, accepts, distinct_cases, cases = result
                print(
                    f"{name:<28} {seconds:8.1f} {refused:6d} {accepts:8d} "
                    f"{distinct_cases:6d}  {text.split(': ', 1)[-1]}"
                )
            adaptive, fixed_run = results[False], results[True]
            once = adaptive[3] == adaptive[4] == adaptive[5]
            fewer = adaptive[2] < fixed_run[2]
            print(
                f"\nadaptive: every case accepted exactly once: {'yes' if once else 'NO'}; "
                f"429s {adaptive[2]} vs fixed {fixed_run[2]}: {'fewer' if fewer else 'NOT fewer'}"
            )
            ok = ok and once and fewer
        sys.exit(0 if ok else 1)
    finally:
        sandbox.stop()
        from django.db import connections

        connections.close_all()
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        os.rmdir(folder)


if __name__ == "__main__":
    main()
