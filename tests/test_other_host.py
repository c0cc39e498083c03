"""The app installed in a different host project (other names, UUID primary key, its own
adapter): tests/otherhost/host_flows.py, run in a pytest of its own with that host's
settings, since a process can have only one ``ALIGN_INTEGRATION_CASE_MODEL``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_flows_pass_in_another_host_project(tmp_path: Path) -> None:
    env = {**os.environ, "OTHERHOST_DB": str(tmp_path / "otherhost.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/otherhost/host_flows.py",
            "--ds",
            "tests.otherhost.settings",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
