"""The sandbox's imports run one way, and nothing in the app itself imports the test kit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "align_integration"
SANDBOX = PACKAGE / "testing" / "sandbox"


def sibling_imports(path: Path) -> set[str]:
    """The modules of the same package that ``path`` imports (``from .x import …``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    return {path.stem: sibling_imports(path) for path in SANDBOX.glob("*.py")}


def test_no_import_cycle_inside_the_sandbox() -> None:
    graph = import_graph()
    assert len(graph) > 10
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*trail, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_only_the_entry_modules_import_the_sandbox_object() -> None:
    importers = {module for module, imports in import_graph().items() if "server" in imports}
    assert importers == {"__init__", "__main__"}


def test_the_app_does_not_import_the_test_kit() -> None:
    aliases = {PACKAGE / "pytest_plugin.py", *(PACKAGE / "sandbox").glob("*.py")}
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if "testing" not in path.relative_to(PACKAGE).parts
        and path not in aliases
        and "align_integration.testing" in path.read_text()
    ]
    assert offenders == []


def test_old_import_paths_are_aliases_of_the_kit() -> None:
    import align_integration.pytest_plugin as old_plugin
    import align_integration.sandbox as old_sandbox
    from align_integration.testing import pytest_plugin, sandbox

    assert old_sandbox.Sandbox is sandbox.Sandbox
    assert old_sandbox.build_scan_zip is sandbox.build_scan_zip
    assert old_plugin.align_sandbox is pytest_plugin.align_sandbox
    assert old_plugin.sandbox_settings is pytest_plugin.sandbox_settings
