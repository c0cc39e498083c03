"""The documentation cannot drift from the code.

Every settings key (``defaults.py``) and every system check id is in docs/settings.md,
every key the code reads has a default, and the site builds with ``mkdocs build --strict``
(broken links, anchors and pages missing from the nav fail it).  The build is skipped when
mkdocs is not installed, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from align_integration.conf import CASE_MODEL_SETTING
from align_integration.defaults import DEFAULTS
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "align_integration"
DOCS = ROOT / "docs"
SETTINGS_PAGE = DOCS / "settings.md"
#: Dicts whose keys are data (a mapping of values), documented as one setting.
DATA_DICTS = {"LEGACY_IMPORT.ORDER_TYPES"}
CHECK_ID_TEXT = re.compile(r"align_integration\.([EW]\d{3})")
CHECK_ID_CALL = re.compile(r"""_id\(\s*["']([EW]\d{3})["']\s*\)""")


def setting_paths(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """``SERVICE``, ``SERVICE.BASE_URL``, ``SERVICE.PATHS``, ``SERVICE.PATHS.token``…"""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict) and path not in DATA_DICTS:
            yield from setting_paths(value, f"{path}.")


def test_every_settings_key_is_documented() -> None:
    page = SETTINGS_PAGE.read_text(encoding="utf-8")
    paths = list(setting_paths(DEFAULTS))
    assert {"SERVICE.BASE_URL", "SERVICE.PATHS.create_order", "ITERO.CLIENT_ID"} <= set(paths)
    missing = [path for path in paths if f"`{path}`" not in page]
    assert not missing, f"not in docs/settings.md: {missing}"
    assert f"`{CASE_MODEL_SETTING}`" in page


def default_of(path: str) -> Any:
    value: Any = DEFAULTS
    for key in path.split("."):
        value = value[key]
    return value


def test_documented_defaults_match_the_code() -> None:
    """Scalar defaults written in the settings table are the ones in defaults.py."""
    page = SETTINGS_PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z_]+(?:\.[A-Za-z_]+)*)` \| `([^`]*)` \|", page, re.MULTILINE)
    checked, wrong = 0, []
    for path, documented in rows:
        try:
            value = default_of(path)
        except KeyError:
            continue
        if isinstance(value, dict | list):
            continue
        checked += 1
        accepted = {repr(value), json.dumps(value), str(value)}
        if isinstance(value, int) and not isinstance(value, bool):
            accepted.add(f"{value:_}")
        if documented not in accepted:
            wrong.append((path, documented, value))
    assert checked >= 20, f"only {checked} documented defaults were found to check"
    assert not wrong, f"docs/settings.md shows other defaults than defaults.py: {wrong}"


def get_setting_calls() -> Iterator[tuple[str, int, tuple[str, ...]]]:
    """(file, line, path) of every ``get_setting("A", "B")`` call with literal arguments."""
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "get_setting" or not node.args:
                continue
            if all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
                path = tuple(a.value for a in node.args)  # type: ignore[attr-defined]
                yield str(source.relative_to(ROOT)), node.lineno, path


def test_every_key_the_code_reads_has_a_default() -> None:
    calls = list(get_setting_calls())
    assert len(calls) > 20, "the scan found too few get_setting calls; is it still right?"
    unknown = []
    for source, line, path in calls:
        node: Any = DEFAULTS
        for key in path:
            if not isinstance(node, dict) or key not in node:
                unknown.append(f"{source}:{line} get_setting{path}")
                break
            node = node[key]
    assert not unknown, f"keys read but missing from DEFAULTS: {unknown}"


def check_ids() -> set[str]:
    ids: set[str] = set()
    for module in ("checks.py", "compat.py"):
        text = (PACKAGE / module).read_text(encoding="utf-8")
        ids |= set(CHECK_ID_TEXT.findall(text)) | set(CHECK_ID_CALL.findall(text))
    return ids


def test_every_check_id_is_documented() -> None:
    ids = check_ids()
    assert {"E001", "W001", "W101"} <= ids
    page = SETTINGS_PAGE.read_text(encoding="utf-8")
    missing = sorted(i for i in ids if f"align_integration.{i}" not in page)
    assert not missing, f"check ids not in docs/settings.md: {missing}"


def test_the_checks_docstring_lists_every_id_the_code_uses() -> None:
    from align_integration import checks

    used = set(CHECK_ID_CALL.findall((PACKAGE / "checks.py").read_text(encoding="utf-8")))
    listed = set(CHECK_ID_TEXT.findall(checks.__doc__ or ""))
    assert used <= listed, f"ids missing from the checks.py docstring: {sorted(used - listed)}"


@pytest.mark.parametrize("page", ["index.md", "orders.md", "callbacks.md", "provider.md"])
def test_flow_pages_have_a_sequence_diagram(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "```mermaid\nsequenceDiagram" in text


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    installed = all(importlib.util.find_spec(name) for name in ("mkdocs", "material"))
    require(installed, "mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
