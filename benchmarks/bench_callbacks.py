"""Callback ingestion under gunicorn + PostgreSQL, against a bare insert-only view.

Signed ``sales_order.created`` events (10 % redelivered duplicates, shuffled) are posted
by a thread-pool load generator to the bare view and to the app's endpoint on the same
server, taking turns in rounds.  Reports events/s, p50/p99 latency and rows stored versus
unique events (must be equal).  Targets: inline processing (the default) reaches ≥ 0.8 of
the bare view's throughput, deferred processing ≥ 0.95; then the worker's apply rate.

    BENCH_DATABASE_URL=postgres://…/align_bench_callbacks \
    .venv/bin/python benchmarks/bench_callbacks.py [--events 2000 --concurrency 16 --workers 4]

The database named by ``BENCH_DATABASE_URL`` (default ``align_bench``) is dropped and
made anew: give it a name no one else uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _setup import machine, recreate_postgres_database  # noqa: E402 - after the path is set

SECRET = "whsec_YmVuY2gtc2VjcmV0LTEyMzQ1Njc4OTA="
ROUNDS = 4  # bare and app alternate in this many rounds
TARGETS = {"inline": 0.8, "deferred": 0.95}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(cases: int) -> list[int]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django
    from django.conf import settings
    from django.db import connection

    recreate_postgres_database(settings.DATABASES["default"])
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from align_integration.models import AlignCase
    from tests.testapp.models import Case, Patient

    ids = []
    for index in range(cases):
        patient = Patient.objects.create(first_name="B", last_name=f"P{index}")
        case = Case.objects.create(patient=patient)
        # Align calls back only about cases that were sent: they have their AlignCase row.
        AlignCase.objects.create(case=case, align_case_id=str(case.pk), patient_id=f"P-{index}")
        ids.append(case.pk)
    connection.close()
    return ids


def make_events(case_ids: list[int], count: int) -> tuple[list[tuple[str, str]], int]:
    unique = []
    for index in range(count):
        body = json.dumps(
            {
                "type": "sales_order.created",
                "timestamp": "2026-11-20T10:00:00Z",
                "data": {
                    "caseId": str(random.choice(case_ids)),
                    "salesOrderNumber": f"SO-{index}",
                    "patientId": f"P-{index}",
                    "orderType": random.choice(["primary", "secondary"]),
                    "createdAt": "2026-11-20T10:00:00Z",
                },
            }
        )
        unique.append((f"msg_{uuid.uuid4().hex}", body))
    duplicates = random.sample(unique, count // 10)
    events = unique + duplicates
    random.shuffle(events)
    return events, len(unique)


def post_all(
    url: str, events: list[tuple[str, str]], concurrency: int
) -> tuple[float, list[float], list[int]]:
    import requests
    from standardwebhooks import Webhook

    webhook = Webhook(SECRET)
    local = threading.local()
    latencies: list[float] = []
    statuses: list[int] = []

    def send(event: tuple[str, str]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        webhook_id, body = event
        now = dt.datetime.now(tz=dt.UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook.sign(webhook_id, now, body),
        }
        started = time.perf_counter()
        response = session.post(url, data=body.encode(), headers=headers, timeout=30)
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, events))
    return time.perf_counter() - started, latencies, statuses


def measure(args: argparse.Namespace, case_ids: list[int], processing: str) -> dict[str, object]:
    """One gunicorn server with ``CALLBACK_PROCESSING=processing``: bare view, then the app."""
    import requests

    from align_integration.models import AlignOrder, CallbackEvent

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        "BENCH_SECRET": SECRET,
        "BENCH_CALLBACK_PROCESSING": processing,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "benchsite.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=HERE,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/bare/", timeout=1)
                break
            except requests.RequestException:  # still booting
                time.sleep(0.1)
        AlignOrder.objects.all().delete()
        CallbackEvent.objects.all().delete()
        bare_events, _ = make_events(case_ids, args.events)
        app_events, unique = make_events(case_ids, args.events)
        post_all(f"http://127.0.0.1:{port}/bare/", make_events(case_ids, 50)[0], 4)  # warm-up
        post_all(f"http://127.0.0.1:{port}/align/callbacks/", make_events(case_ids, 50)[0], 4)
        CallbackEvent.objects.all().delete()
        AlignOrder.objects.all().delete()
        # Bare and app take turns in rounds, so a change of load on the machine meets both.
        bare: tuple[float, list[float], list[int]] = (0.0, [], [])
        app: tuple[float, list[float], list[int]] = (0.0, [], [])
        size = -(-len(app_events) // ROUNDS)
        for start in range(0, len(app_events), size):
            for url, events, total in (
                ("bare/", bare_events, "bare"),
                ("align/callbacks/", app_events, "app"),
            ):
                took = post_all(
                    f"http://127.0.0.1:{port}/{url}", events[start : start + size], args.concurrency
                )
                before = bare if total == "bare" else app
                summed = (before[0] + took[0], before[1] + took[1], before[2] + took[2])
                if total == "bare":
                    bare = summed
                else:
                    app = summed
        stored = CallbackEvent.objects.exclude(event_type="bare").count()
    finally:
        server.terminate()
        server.wait(timeout=10)
    applied_after = None
    if processing == "deferred":
        from django.test import override_settings

        from align_integration.worker import reprocess_due_callbacks

        with override_settings(
            ALIGN_INTEGRATION={**_settings(), "CALLBACK_PROCESSING": "deferred"}
        ):
            started = time.perf_counter()
            while reprocess_due_callbacks(limit=500).processed:
                pass
            applied_after = time.perf_counter() - started
    return {
        "sent": len(app_events),
        "unique": unique,
        "bare": bare,
        "app": app,
        "stored": stored,
        "orders": AlignOrder.objects.count(),
        "worker_seconds": applied_after,
    }


def _settings() -> dict[str, object]:
    from django.conf import settings

    return dict(settings.ALIGN_INTEGRATION)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--processing", choices=["inline", "deferred", "both"], default="both")
    args = parser.parse_args()

    case_ids = prepare_database(args.cases)
    modes = ["inline", "deferred"] if args.processing == "both" else [args.processing]

    def pct(values: list[float], q: int) -> str:
        return f"{statistics.quantiles(values, n=100)[q - 1] * 1000:.1f} ms"

    print(machine())
    print(
        f"{args.events + args.events // 10} events per side ({args.events // 10} duplicates), "
        f"{args.concurrency} concurrent senders, gunicorn -w {args.workers}, PostgreSQL"
    )
    print(f"{'':32}{'events/s':>10}{'p50':>11}{'p99':>11}  statuses")
    for mode in modes:
        result = measure(args, case_ids, mode)
        sent = result["sent"]
        for label, (seconds, latencies, statuses) in (
            ("bare insert-only view", result["bare"]),
            (f"align callbacks ({mode})", result["app"]),
        ):
            print(
                f"{label:32}{sent / seconds:>10.0f}{pct(latencies, 50):>11}"
                f"{pct(latencies, 99):>11}  {sorted(set(statuses))}"
            )
        ratio = result["bare"][0] / result["app"][0]
        verdict = "PASS" if ratio >= TARGETS[mode] else "FAIL"
        print(
            f"  {mode}: throughput ratio app/bare {ratio:.2f} "
            f"(target >= {TARGETS[mode]}: {verdict}); "
            f"rows stored {result['stored']} vs unique events {result['unique']} "
            f"({'EQUAL' if result['stored'] == result['unique'] else 'MISMATCH'}); "
            f"sales orders {result['orders']}"
            + (
                f", then applied by align_worker in {result['worker_seconds']:.1f} s "
                f"({result['unique'] / result['worker_seconds']:.0f} events/s)"
                if result["worker_seconds"] is not None
                else ""
            )
        )


if __name__ == "__main__":
    main()
