"""``align_reconcile`` in the demo: ``seed_drift`` against a running sandbox, then the
command finds the drift and ``--fix`` adopts only the unambiguous ids.

Run from the repository root: ``pytest demo/tests/test_demo_drift.py``.  The demo's
commands run in subprocesses (the demo's settings never meet the test suite's), pointed
at a sandbox this test starts on a free port.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from align_integration.sandbox import Sandbox

DEMO_DIR = Path(__file__).resolve().parent.parent
MANAGE = DEMO_DIR / "manage.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(client_id="sandbox-client", client_secret="sandbox-secret") as running:
        yield running


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("demo-drift")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_DB_PATH": str(folder / "demo.sqlite3"),
        "DEMO_MEDIA_ROOT": str(folder / "media"),
        "SANDBOX_PORT": str(sandbox.port),
    }
    for arguments in (("migrate", "--noinput", "-v", "0"), ("seed_demo",), ("seed_drift",)):
        assert manage(env, *arguments).returncode == 0
    return env


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *arguments],
        env=env,
        cwd=DEMO_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def outcomes(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return sorted((row["outcome"], row["drift"]) for row in csv.DictReader(stream))


def test_reconcile_finds_the_seeded_drift_and_fixes_the_unambiguous(
    demo_env: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    writes = ("create_patient", "create_order", "upload_assets")
    result = manage(demo_env, "align_reconcile", "--report", str(tmp_path / "drift.csv"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes(tmp_path / "drift.csv") == [
        ("drift", "at Align, unknown here"),
        ("drift", "at Align, unknown here"),
        ("drift", "conflicting ids"),
        ("drift", "here, not at Align"),
        ("in step", ""),
    ]
    result = manage(demo_env, "align_reconcile", "--fix", "--report", str(tmp_path / "fix.csv"))
    assert result.returncode == 1
    assert [outcome for outcome, _ in outcomes(tmp_path / "fix.csv")].count("fixed") == 2
    result = manage(demo_env, "align_reconcile", "--report", str(tmp_path / "after.csv"))
    assert [outcome for outcome, _ in outcomes(tmp_path / "after.csv")].count("in step") == 3
    assert all(sandbox.count(call) == 0 for call in writes)
    # Seeding again brings the drift back, and makes nothing twice at the sandbox.
    patients = len(sandbox.patients)
    assert manage(demo_env, "seed_drift").returncode == 0
    assert len(sandbox.patients) == patients
    result = manage(demo_env, "align_reconcile")
    assert result.returncode == 1 and "4 with drift" in result.stdout
