"""Smoke test of the demo host project, run from the repository root.

``pytest demo/tests/test_demo_smoke.py``: runs ``demo/manage.py check``, ``migrate`` and
``seed_demo`` (twice: it is idempotent) on a temporary SQLite database, in subprocesses so
that the demo's settings never meet the test suite's, then asks the demo's Django which
cases exist and whether they can be sent to Align.  Needs no network and no server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEMO_DIR = Path(__file__).resolve().parent.parent
MANAGE = DEMO_DIR / "manage.py"
TIMEOUT = 120

REPORT = """
import json
from django.conf import settings
from django.contrib.auth import get_user_model
from waffle.models import Flag
from align_integration.adapters import get_adapter
from align_integration.models import CaseAsset
from cases.models import Case
users = {u.username: [u.is_staff, u.is_superuser, hasattr(u, "provider")]
         for u in get_user_model().objects.all()}
staff_group_permissions = sorted(
    f"{p.content_type.app_label}.{p.codename}"
    for g in get_user_model().objects.get(username="staff").groups.all()
    for p in g.permissions.all()
)
cases = {
    case.case_number: {
        "eligible": case.can_send_to_align.ok,
        "gender": get_adapter().patient(case).gender,
        "stl": CaseAsset.objects.filter(case=case, kind="STL").count(),
        "stl_solid": all(
            asset.file.open("rb").read().startswith(b"solid ")
            for asset in CaseAsset.objects.filter(case=case, kind="STL")
        ),
        "provider": case.prescription.provider.user.username,
    }
    for case in Case.objects.all()
}
flags = {flag.name: flag.everyone for flag in Flag.objects.all()}
print(json.dumps({
    "users": users, "cases": cases, "flags": flags,
    "staff_group_permissions": staff_group_permissions,
    "adapter": settings.ALIGN_INTEGRATION["CASE_ADAPTER"],
    "service": settings.ALIGN_INTEGRATION["SERVICE"]["BASE_URL"],
    "secrets": settings.ALIGN_INTEGRATION["CALLBACK_SECRETS"],
}))
"""


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("demo")
    env = {
        **os.environ,
        # The suite's own settings must not leak into the demo's process.
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_DB_PATH": str(folder / "demo.sqlite3"),
        "DEMO_MEDIA_ROOT": str(folder / "media"),
        "SANDBOX_PORT": "8799",
    }
    return env


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(MANAGE), *arguments],
        env=env,
        cwd=DEMO_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(arguments)}:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def seeded(demo_env: dict[str, str]) -> dict[str, Any]:
    manage(demo_env, "migrate", "--noinput", "-v", "0")
    manage(demo_env, "seed_demo")
    manage(demo_env, "seed_demo")  # idempotent: nothing is created twice
    output = manage(demo_env, "shell", "-c", REPORT).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_check_passes(demo_env: dict[str, str]) -> None:
    result = manage(demo_env, "check", "--fail-level", "WARNING")
    assert "no issues" in result.stdout


def test_no_missing_migrations(demo_env: dict[str, str]) -> None:
    manage(demo_env, "makemigrations", "cases", "--check", "--dry-run")


def test_seeded_cases(seeded: dict[str, Any]) -> None:
    cases = seeded["cases"]
    assert sorted(cases) == ["DEMO-001", "DEMO-002", "DEMO-003", "DEMO-004", "DEMO-005"]
    assert cases["DEMO-001"]["eligible"] is True
    assert cases["DEMO-001"]["stl"] == 2
    assert cases["DEMO-002"] == {**cases["DEMO-002"], "eligible": True, "gender": "U"}
    assert cases["DEMO-003"]["eligible"] is False
    assert cases["DEMO-003"]["stl"] == 1
    assert cases["DEMO-004"]["eligible"] is False
    assert cases["DEMO-005"]["eligible"] is False
    assert cases["DEMO-005"]["stl"] == 0
    assert all(case["stl_solid"] for case in cases.values())
    assert {case["provider"] for case in cases.values()} == {"provider"}


def test_seeded_users_and_flags(seeded: dict[str, Any]) -> None:
    assert seeded["users"]["staff"] == [True, True, False]
    assert seeded["users"]["provider"] == [False, False, True]
    assert seeded["staff_group_permissions"] == [
        "align_integration.manage_itero_connection",
        "align_integration.send_to_align",
    ]
    assert seeded["flags"] == {
        "initiate-align-order": True,
        "set-align-order-status": True,
        "auto-send-to-align": False,
    }


def test_settings_follow_the_environment(seeded: dict[str, Any]) -> None:
    sys.path.insert(0, str(DEMO_DIR))
    try:
        from demo_project.env import CALLBACK_SECRET
    finally:
        sys.path.remove(str(DEMO_DIR))
    assert seeded["adapter"] == "cases.adapters.DemoCaseAdapter"
    assert seeded["service"] == "http://127.0.0.1:8799"
    assert seeded["secrets"] == [CALLBACK_SECRET]


def test_run_script_starts_with_help() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO_DIR / "run.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0
    assert "--keep-data" in result.stdout


CASE_PAGES = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from cases.models import Case
client = Client(HTTP_HOST="localhost")  # the demo's ALLOWED_HOSTS
client.force_login(get_user_model().objects.get(username="staff"))
pages = {}
for number in ("DEMO-001", "DEMO-002", "DEMO-004"):
    response = client.get(f"/staff/cases/{Case.objects.get(case_number=number).uuid}/")
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    pages[number] = {
        "panel": "align-panel" in html,
        "panel_above_prescription": "align-panel" in html
        and html.index("align-panel") < html.index("<h2>Prescription</h2>"),
        "gender_warning": "gender is unknown" in html,
    }
print(json.dumps(pages))
"""


def test_the_case_page_embeds_the_panel_above_the_prescription(
    seeded: dict[str, Any], demo_env: dict[str, str]
) -> None:
    output = manage(demo_env, "shell", "-c", CASE_PAGES).stdout
    pages = json.loads(output.strip().splitlines()[-1])
    assert pages["DEMO-001"] == {
        "panel": True,
        "panel_above_prescription": True,
        "gender_warning": False,
    }
    assert pages["DEMO-002"]["gender_warning"] is True  # unknown gender, sent as M
    assert pages["DEMO-004"]["panel"] is False  # another lab: no panel, as the old tool did
