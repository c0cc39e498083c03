"""``python -m align_integration.sandbox`` starts, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_serves_until_terminated() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALIGN_SANDBOX_CLIENT_ID": "from-env"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "align_integration.sandbox",
            "--port",
            str(port),
            "--client-secret",
            "cli-secret",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        token = requests.post(
            f"http://127.0.0.1:{port}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "from-env",
                "client_secret": "cli-secret",
            },
            timeout=5,
        )
        assert token.status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/__sandbox__/state", timeout=5).ok
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "callback secret (generated): whsec_" in stderr


def test_cli_reports_a_busy_port_and_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "align_integration.sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            timeout=30,
        )
    assert finished.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
