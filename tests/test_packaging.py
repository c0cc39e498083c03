"""The wheel a host installs carries everything the app needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("django_align_integration-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_has_migrations_templates_static_and_typing(wheel_names: set[str]) -> None:
    package = ROOT / "align_integration"
    expected = {
        str(path.relative_to(ROOT))
        for pattern in ("migrations/*.py", "templates/**/*.html", "static/**/*.*")
        for path in package.glob(pattern)
    }
    assert expected, "nothing to look for"
    assert expected <= wheel_names, sorted(expected - wheel_names)
    assert "align_integration/py.typed" in wheel_names
    assert "align_integration/static/align_integration/vendor/html2canvas/LICENSE" in wheel_names


def test_wheel_registers_the_pytest_plugin_and_leaves_out_the_tests(
    wheel: Path, wheel_names: set[str]
) -> None:
    entry_points = next(n for n in wheel_names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(entry_points).decode()
    assert "[pytest11]" in text
    assert "align_integration = align_integration.testing.pytest_plugin" in text
    assert not any(name.startswith(("tests/", "demo/", "benchmarks/")) for name in wheel_names)
    assert "align_integration/testing/pytest_plugin.py" in wheel_names
    assert "align_integration/testing/sandbox/__main__.py" in wheel_names
    # The old module paths stay importable (aliases) for hosts that name them.
    assert "align_integration/pytest_plugin.py" in wheel_names
    assert "align_integration/sandbox/__main__.py" in wheel_names
