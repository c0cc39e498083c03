"""Token single-flight: 8 processes x 8 threads ask for the Align token at once with an
empty Redis token cache.  Target: exactly one token request reaches the service.

    .venv/bin/python benchmarks/bench_token.py [--processes 8 --threads 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from _setup import table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    args = parser.parse_args()

    import redis

    from align_integration.sandbox import Sandbox
    from tests.token_worker import fetch_tokens

    redis.Redis.from_url(args.redis_url).flushdb()
    sandbox = Sandbox().start()
    start_at = time.time() + 4.0  # every process imports Django first, then all start together
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(args.processes) as pool:
        results = pool.starmap(
            fetch_tokens,
            [(sandbox.url, args.redis_url, args.threads, start_at)] * args.processes,
        )
    elapsed = time.perf_counter() - started
    tokens = [token for result in results for token in result]
    requests_made = sandbox.count("token")
    sandbox.stop()
    redis.Redis.from_url(args.redis_url).flushdb()
    print(
        table(
            [
                ("callers", f"{args.processes} processes x {args.threads} threads = {len(tokens)}"),
                ("distinct tokens seen", str(len(set(tokens)))),
                (
                    "token requests made",
                    f"{requests_made} (target exactly 1: {'PASS' if requests_made == 1 else 'FAIL'})",
                ),
                ("wall time incl. process start", f"{elapsed:.2f} s"),
            ]
        )
    )


if __name__ == "__main__":
    main()
