"""Run in child processes: many threads asking for the Align token at once."""

from __future__ import annotations

import os
import threading


def fetch_tokens(sandbox_url: str, redis_url: str, threads: int, start_at: float) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import time

    import django
    from django.conf import settings

    django.setup()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
        }
    }
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {
            **settings.ALIGN_INTEGRATION["SERVICE"],
            "BASE_URL": sandbox_url,
            "CLIENT_ID": "sandbox-client",
            "CLIENT_SECRET": "sandbox-secret",
        },
    }
    from align_integration.client.service import AlignServiceClient

    tokens: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        client = AlignServiceClient()
        token = client.token
        with lock:
            tokens.append(token)

    while time.time() < start_at:  # start every process's threads together
        time.sleep(0.001)
    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return tokens
