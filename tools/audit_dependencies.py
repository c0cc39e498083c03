"""``make audit``: check the installed dependency versions against published advisories.

Runs ``pip-audit`` on exactly what is installed here (``pip freeze``, no resolving) with
PyPI's advisory data (``--vulnerability-service pypi``: the per-release JSON of each
package, which lists its known vulnerabilities).

- A known vulnerability fails the run, always.
- When the advisory data cannot be reached at all (no network, or a registry mirror that
  serves packages but not PyPI's per-release JSON, as on this project's build machines),
  the run says so and is skipped; with ``AUDIT_REQUIRED=true`` it fails instead, for a CI
  that has the network (see docs/security.md, "Dependencies").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REQUIRED = os.environ.get("AUDIT_REQUIRED", "").lower() == "true"
TIMEOUT_SECONDS = 900


def installed_requirements(folder: Path) -> Path:
    """``name==version`` of every installed distribution but this project (editable)."""
    frozen = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pinned = [line for line in frozen.splitlines() if "==" in line and not line.startswith("#")]
    path = folder / "requirements.txt"
    path.write_text("\n".join(pinned) + "\n", encoding="utf-8")
    return path


def run_pip_audit(requirements: Path, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(requirements),
        "--no-deps",
        "--disable-pip",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--output",
        str(report),
        "--progress-spinner",
        "off",
    ]
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )


def skipped(reason: str, *, required: bool) -> tuple[int, list[str]]:
    verdict = "FAILED (AUDIT_REQUIRED=true)" if required else "skipped"
    return (1 if required else 0), [
        f"audit: {verdict}: {reason}",
        "audit: see docs/security.md, 'Dependencies', for where the audit can run.",
    ]


def judge(result: dict[str, Any], *, required: bool) -> tuple[int, list[str]]:
    """The exit code and the lines to print for a pip-audit JSON report."""
    dependencies = result.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    not_found = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(not_found)
    lines = []
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            lines.append(
                f"audit: {dependency['name']} {dependency['version']}: {vuln['id']} "
                f"(fixed in {fixed})"
            )
    if vulnerable:
        lines.append(f"audit: FAILED: {len(vulnerable)} installed package(s) have advisories.")
        return 1, lines
    if audited == 0:
        return skipped(
            f"no advisory data could be read for any of the {len(dependencies)} packages "
            "(PyPI's per-release JSON is not reachable from here)",
            required=required,
        )
    note = f"; {len(not_found)} not found on the index" if not_found else ""
    return 0, [f"audit: OK: {audited} packages checked, no known advisories{note}."]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="align-audit-") as folder:
        requirements = installed_requirements(Path(folder))
        report = Path(folder) / "report.json"
        try:
            finished = run_pip_audit(requirements, report)
        except subprocess.TimeoutExpired:
            code, lines = skipped(
                f"pip-audit did not finish within {TIMEOUT_SECONDS} s", required=REQUIRED
            )
        else:
            if report.exists():
                code, lines = judge(
                    json.loads(report.read_text(encoding="utf-8")), required=REQUIRED
                )
            else:
                last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
                code, lines = skipped(f"pip-audit could not run: {last}", required=REQUIRED)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
