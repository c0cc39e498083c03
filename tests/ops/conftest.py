"""Fixtures of the operations tests: cases ready for each batch action, CSV files, and the
settings that let worker subprocesses share the test database and the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from align_integration import Align
from align_integration.models import CaseAsset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sent_case(align_sandbox: Any, make_case: Any) -> Callable[..., Any]:
    """A case sent to the sandbox (patient, order, upload), with an acceptance screenshot."""
    align_sandbox.auto_callbacks = False

    def build(*, screenshot: bool = True, **kwargs: Any) -> Any:
        case = make_case(**kwargs)
        assert Align().initiate_align_order(None, case).ok
        if screenshot:
            add_screenshot(case)
        return case

    return build


def add_screenshot(case: Any) -> CaseAsset:
    return CaseAsset.objects.create(
        case=case,
        kind=CaseAsset.CCACCEPTSCREEN,
        file=f"align/screens/{case.pk}.jpg",
        content_type="image/jpeg",
        vault_id=f"vault-{case.pk}",
        external_key=f"key-{case.pk}",
    )


def write_csv(
    path: Path, header: Iterable[str], rows: Iterable[Iterable[object]], **options: Any
) -> Path:
    """A CSV as a spreadsheet writes it: ``bom``, ``crlf`` and ``blank_lines`` to taste."""
    newline = "\r\n" if options.get("crlf") else "\n"
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(_cell(value) for value in row))
        if options.get("blank_lines"):
            lines.append("")
    text = newline.join(lines) + newline
    path.write_bytes(("\ufeff" if options.get("bom") else "").encode() + text.encode())
    return path


def _cell(value: object) -> str:
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def read_report(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def accepted_once(align_sandbox: Any) -> dict[str, int]:
    """caseId -> how many ClinCheck accepts the sandbox carried out for it."""
    done: dict[str, int] = {}
    keys: set[str] = set()
    for call in align_sandbox.calls("clincheck_accept"):
        if call.status == 200 and call.idempotency_key not in keys:
            keys.add(call.idempotency_key)
            done[call.form["caseId"]] = done.get(call.form["caseId"], 0) + 1
    return done


# -- subprocesses sharing the test database ----------------------------------------------------
@pytest.fixture
def shared_db(postgres: None, align_sandbox: Any) -> dict[str, str]:
    """Environment for a subprocess using this test's database and sandbox (PostgreSQL).

    The test must use ``django_db(transaction=True)`` so its rows are committed.
    """
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.ops.subprocess_settings",
        "ALIGN_TEST_DB_NAME": db["NAME"],
        "ALIGN_TEST_SANDBOX_URL": align_sandbox.url,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``python -m django ARGS`` in the project root."""
    return subprocess.Popen(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def communicate(process: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
    """Wait for a subprocess of :func:`manage`: (its exit code, its output); fails the test
    (after killing it) when it does not end within ``timeout`` seconds."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(map(str, process.args))} did not finish:\n{output}")
    return process.returncode, output
