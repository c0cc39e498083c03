"""Dependencies (issue 13, finding 9): the declared floors are past the releases with
published advisories, and the audit tool (``make audit``) fails on any known advisory and
says plainly when it could not read the advisory data."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

#: The first release past the advisories known when the floors were raised (docs/security.md).
FLOORS = {
    "django": "5.2.17",
    "requests": "2.33.0",
    "urllib3": "2.7.0",
    "pillow": "12.2.0",
    "cryptography": "46.0.5",
    "gunicorn": "23.0.0",
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    requirements = [Requirement(line) for line in lines]
    return {requirement.name.lower(): requirement for requirement in requirements}


def just_below(version: str) -> Version:
    """The highest version number below ``version`` (``2.7.0`` -> ``2.6.999``)."""
    parts = list(Version(version).release)
    last = max(index for index, part in enumerate(parts) if part > 0)
    parts[last] -= 1
    parts[last + 1 :] = [999] * (len(parts) - last - 1)
    return Version(".".join(str(part) for part in parts))


@pytest.mark.parametrize(("name", "floor"), sorted(FLOORS.items()))
def test_no_release_below_the_floor_is_admitted(name: str, floor: str) -> None:
    specifier = declared()[name].specifier
    assert specifier.contains(Version(floor)), (name, str(specifier))
    assert not specifier.contains(just_below(floor)), (name, str(specifier))


def test_pip_audit_is_in_the_test_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(
        Requirement(line).name == "pip-audit" for line in project["optional-dependencies"]["test"]
    )
    assert "audit" in (ROOT / "Makefile").read_text(encoding="utf-8").split("test:")[-1]


def audit_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_dependencies", ROOT / "tools" / "audit_dependencies.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(*dependencies: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(dependencies), "fixes": []}


def test_the_audit_fails_on_a_known_advisory() -> None:
    vulnerable = {
        "name": "django",
        "version": "5.2.8",
        "vulns": [{"id": "PYSEC-2025-1", "fix_versions": ["5.2.9"]}],
    }
    code, lines = audit_tool().judge(
        report(vulnerable, {"name": "requests", "version": "2.34.2", "vulns": []}),
        required=False,
    )
    assert code == 1
    assert "audit: django 5.2.8: PYSEC-2025-1 (fixed in 5.2.9)" in lines


def test_the_audit_passes_when_everything_audited_is_clean() -> None:
    code, lines = audit_tool().judge(
        report(
            {"name": "requests", "version": "2.34.2", "vulns": []},
            {"name": "local-thing", "skip_reason": "Dependency not found on PyPI"},
        ),
        required=True,
    )
    assert code == 0 and "1 packages checked" in lines[0]


@pytest.mark.parametrize(("required", "code"), [(False, 0), (True, 1)])
def test_unreachable_advisory_data_is_said_and_fails_only_when_required(
    required: bool, code: int
) -> None:
    unreachable = report(
        {"name": "django", "skip_reason": "Dependency not found on PyPI"},
        {"name": "requests", "skip_reason": "Dependency not found on PyPI"},
    )
    got, lines = audit_tool().judge(unreachable, required=required)
    assert got == code
    assert "no advisory data could be read" in lines[0]
