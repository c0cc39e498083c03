"""Streamed download of a large iTero scan zip: memory and throughput.

The sandbox serves a generated scan zip of ``--size`` bytes (1 GB by default).  Each side
runs in a fresh child process, alternating, so peak RSS is measured cleanly:

- bare: ``requests`` streamed copy of the same URL into a file;
- app:  ``IteroClient.download`` (Discovery URL checks, shared token, Content-Length check)
  into a temporary file, as the connector does before it extracts the members into
  storage (extraction is a further step the bare copy has no counterpart for; with
  ``--with-storage`` the app side also copies the archive into Django storage).

Targets: the app's peak RSS growth < 64 MB; throughput ≥ 0.8 of the bare copy's.

    .venv/bin/python benchmarks/bench_download.py [--size 1073741824 --rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, urlsplit

from _setup import configure_django, table

CHUNK = 1024 * 1024


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(
    side: str, sandbox_url: str, rx_id: str, token: str, workdir: str, with_storage: str
) -> dict[str, float]:
    import requests

    itero = {
        "OAUTH_BASE_URL": sandbox_url,
        "BASE_URL": sandbox_url,
        "LOGIN_URL": f"{sandbox_url}/itero/login",
        "CLIENT_ID": "itero-client",
        "CLIENT_SECRET": "itero-secret",
        "ALLOWED_HOSTS": ["127.0.0.1"],
        "NOTIFICATION_TOKEN": "bench",
    }
    configure_django(service_url=sandbox_url)
    from django.conf import settings

    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "ITERO": itero}
    settings.MEDIA_ROOT = workdir
    from django.core.files import File
    from django.core.files.storage import default_storage

    from align_integration.client.itero import IteroClient
    from align_integration.client.token import TokenCache

    url = f"{sandbox_url}/api/third-party/v1/orders/{rx_id}/download/ide"
    baseline = rss_mb()
    started = time.perf_counter()
    if side == "bare":
        with requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=(5, 60)
        ) as response:
            response.raise_for_status()
            with open(os.path.join(workdir, "bare.zip"), "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
        size = os.path.getsize(os.path.join(workdir, "bare.zip"))
    else:
        client = IteroClient(
            tokens=TokenCache("itero-bench", lambda: (token, 3600)),
            endpoints={
                "download": f"{sandbox_url}/api/third-party/v1/orders/{{rxId}}/download/{{assetType}}"
            },
        )
        with tempfile.NamedTemporaryFile(dir=workdir, suffix=".zip") as handle:
            size = client.download(rx_id, handle)
            if with_storage == "1":
                handle.seek(0)
                default_storage.save("scans/app.zip", File(handle))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "bytes": size, "rss_growth_mb": rss_mb() - baseline}


def sign_in(sandbox_url: str) -> str:
    import requests

    redirect = "http://127.0.0.1/callback"
    login = requests.get(
        f"{sandbox_url}/itero/login",
        params={
            "client_id": "itero-client",
            "redirect_uri": redirect,
            "response_type": "code",
            "state": "s",
        },
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(login.headers["Location"]).query)["code"][0]
    tokens = requests.post(
        f"{sandbox_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": "itero-client",
            "client_secret": "itero-secret",
        },
        timeout=5,
    ).json()
    paired = requests.post(
        f"{sandbox_url}/api/third-party/v1/pair",
        json={"accountNumber": "LAB-1001", "callbackUrl": ""},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    ).json()
    return paired.get("access_token") or tokens["access_token"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:8])))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024**3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--with-storage", action="store_true")
    args = parser.parse_args()

    from align_integration.sandbox import Sandbox

    sandbox = Sandbox().start()
    token = sign_in(sandbox.url)
    rx_id = sandbox.itero.create_scan(size=args.size, notify=False)
    results: dict[str, list[dict[str, float]]] = {"bare": [], "app": []}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for side in ("bare", "app"):
                output = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        side,
                        sandbox.url,
                        rx_id,
                        token,
                        workdir,
                        "1" if args.with_storage else "0",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[side].append(json.loads(output.strip().splitlines()[-1]))
                for name in os.listdir(workdir):
                    path = os.path.join(workdir, name)
                    if os.path.isfile(path):
                        os.unlink(path)
    sandbox.stop()

    def rate(side: str) -> float:
        runs = results[side]
        return sum(r["bytes"] for r in runs) / sum(r["seconds"] for r in runs) / 1024**2

    bare, app = rate("bare"), rate("app")
    growth = max(r["rss_growth_mb"] for r in results["app"])
    print(
        table(
            [
                (
                    "archive size",
                    f"{results['app'][0]['bytes'] / 1024**2:.0f} MiB, {args.rounds} rounds per side",
                ),
                (
                    "bare requests streamed copy",
                    f"{bare:.0f} MiB/s, peak RSS growth {max(r['rss_growth_mb'] for r in results['bare']):.1f} MB",
                ),
                (
                    "IteroClient.download" + (" + storage copy" if args.with_storage else ""),
                    f"{app:.0f} MiB/s, peak RSS growth {growth:.1f} MB",
                ),
                (
                    "throughput ratio app/bare",
                    f"{app / bare:.2f} (target >= 0.8: {'PASS' if app / bare >= 0.8 else 'FAIL'})",
                ),
                (
                    "app RSS growth",
                    f"{growth:.1f} MB (target < 64 MB: {'PASS' if growth < 64 else 'FAIL'})",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
