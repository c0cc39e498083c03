"""Client overhead: N calls through ``AlignServiceClient`` vs a bare ``requests.Session``.

Both hit the same local sandbox endpoint (``GET /patients?caseId=``) with a bearer token,
interleaved in rounds so drift on the machine affects both alike.  Target: ratio ≤ 1.2.

The sandbox is served by a process of its own, as the real service runs on another
machine.  (Served by a thread of this process, as before 2026-12-01, the server's work
shares the measuring interpreter's lock, and each call's hand-overs between the two threads
weigh on the side that holds the lock longer: that measured 1.15 to 1.26.)

    .venv/bin/python benchmarks/bench_client.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import RemoteSandbox, configure_django, machine, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    sandbox = RemoteSandbox()  # before Django: the child copies nothing of it
    configure_django(service_url=sandbox.url)
    import requests

    from align_integration.client.service import AlignServiceClient

    client = AlignServiceClient()
    token = client.token
    bare = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    per_round = max(1, args.calls // args.rounds)

    def run_client() -> float:
        started = time.perf_counter()
        for _ in range(per_round):
            client.find_patients("bench-case")
        return time.perf_counter() - started

    def run_bare() -> float:
        started = time.perf_counter()
        for _ in range(per_round):
            response = bare.get(
                f"{sandbox.url}/patients",
                params={"caseId": "bench-case"},
                headers=headers,
                timeout=(5, 30),
            )
            response.raise_for_status()
            response.json()
        return time.perf_counter() - started

    run_client(), run_bare()  # warm up both connection pools
    client_times, bare_times = [], []
    for _ in range(args.rounds):
        client_times.append(run_client())
        bare_times.append(run_bare())
    sandbox.stop()
    client_total, bare_total = sum(client_times), sum(bare_times)
    ratio = client_total / bare_total
    calls = per_round * args.rounds
    print(machine())
    print(
        table(
            [
                ("calls per side", str(calls)),
                ("bare requests.Session", f"{bare_total:.3f} s ({calls / bare_total:.0f} calls/s)"),
                (
                    "AlignServiceClient",
                    f"{client_total:.3f} s ({calls / client_total:.0f} calls/s)",
                ),
                (
                    "per-round ratio (median)",
                    f"{statistics.median(c / b for c, b in zip(client_times, bare_times, strict=True)):.3f}",
                ),
                (
                    "ratio client / bare",
                    f"{ratio:.3f} (target <= 1.2: {'PASS' if ratio <= 1.2 else 'FAIL'})",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
