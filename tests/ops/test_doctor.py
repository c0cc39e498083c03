"""``align_doctor``: one line per check, exit 0 only when all pass, never a secret."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from align_integration.models import IteroConnection

pytestmark = pytest.mark.django_db


def doctor(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("align_doctor", *args, stdout=out, no_color=True)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def lines(output: str) -> dict[str, str]:
    """check name -> "OK" / "FAIL"."""
    found = {}
    for line in output.splitlines():
        verdict, _, rest = line.partition(" ")
        found[rest.split(":", 1)[0]] = verdict
    return found


def without_itero(settings: Any) -> None:
    config = dict(settings.ALIGN_INTEGRATION)
    config.pop("ITERO", None)
    settings.ALIGN_INTEGRATION = config


def test_all_checks_pass(align_sandbox: Any, settings: Any) -> None:
    without_itero(settings)
    code, out = doctor()
    assert code == 0, out
    assert lines(out) == {
        name: "OK"
        for name in ("settings", "cache", "token", "service", "tasks", "backlog", "itero", "paused")
    }
    assert "new bearer token obtained" in out
    assert "not configured" in out
    code, out = doctor()
    assert "read from the cache" in out
    assert align_sandbox.count("find_patients") == 2


def test_paired_itero_passes_and_repairing_fails(align_sandbox: Any) -> None:
    IteroConnection.objects.create(pk=1, state=IteroConnection.PAIRED, account_number="LAB-7")
    code, out = doctor()
    assert code == 0, out
    assert "paired with lab account LAB-7" in out
    IteroConnection.objects.filter(pk=1).update(
        state=IteroConnection.NEEDS_REPAIRING, last_error="refresh token refused"
    )
    code, out = doctor()
    assert code == 1
    assert "FAIL itero: needs re-pairing: refresh token refused" in out


def test_wrong_credentials_fail_without_showing_secrets(align_sandbox: Any, settings: Any) -> None:
    without_itero(settings)
    config = dict(settings.ALIGN_INTEGRATION)
    config["SERVICE"] = {**config["SERVICE"], "CLIENT_SECRET": "wrong-secret-value"}
    settings.ALIGN_INTEGRATION = config
    code, out = doctor("--refresh-token")
    assert code == 1
    assert lines(out)["token"] == "FAIL" and lines(out)["service"] == "FAIL"
    assert "AlignAuthenticationError (HTTP 401)" in out or "(HTTP 401)" in out
    assert "the service answers (HTTP" in out
    assert "wrong-secret-value" not in out and "sandbox-secret" not in out
    assert lines(out)["settings"] == lines(out)["cache"] == "OK"


def test_missing_settings_and_unreachable_cache_fail(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.ALIGN_INTEGRATION = {"TOKEN_CACHE": "broken"}
    code, out = doctor()
    assert code == 1
    found = lines(out)
    assert found["settings"] == "FAIL" and "align_integration.E001" in out
    assert found["cache"] == "FAIL" and "ConnectionError" in out
    assert found["token"] == "FAIL"
    assert found["tasks"] == "OK" and found["itero"] == "OK"


def test_misconfigured_task_backend_fails(align_sandbox: Any, settings: Any) -> None:
    without_itero(settings)
    settings.TASKS = {"default": {"BACKEND": "no.such.Backend"}}
    code, out = doctor()
    assert code == 1
    assert lines(out)["tasks"] == "FAIL"


def test_backlog_says_when_retries_are_waiting(
    align_sandbox: Any, settings: Any, make_case: Any
) -> None:
    import datetime as dt

    from django.utils import timezone

    from align_integration.models import RemoteOperation

    without_itero(settings)
    case = make_case()
    RemoteOperation.objects.create(
        case=case,
        kind=RemoteOperation.CLINCHECK_ACCEPT,
        dedupe_key="x",
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1),
    )
    code, out = doctor()
    assert code == 0
    assert "1 operations due" in out and "is align_worker running?" in out


def test_backlog_waiting_too_long_fails(align_sandbox: Any, settings: Any, make_case: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    from align_integration.models import RemoteOperation

    without_itero(settings)
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "BACKLOG_MAX_OVERDUE": 600}
    RemoteOperation.objects.create(
        case=make_case(),
        kind=RemoteOperation.CLINCHECK_ACCEPT,
        dedupe_key="x",
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=timezone.now() - dt.timedelta(minutes=11),
    )
    code, out = doctor()
    assert code == 1
    assert "FAIL backlog: 1 operations due, the oldest for 66" in out
    assert "over 600 s, is align_worker running?" in out


def test_pause_switch_warns_without_failing(align_sandbox: Any, settings: Any) -> None:
    from waffle.models import Switch

    without_itero(settings)
    Switch.objects.create(name="align-outbound-paused", active=True)
    code, out = doctor()
    assert code == 0, out
    assert lines(out)["paused"] == "WARN"
    assert "nothing is sent to Align or iTero" in out


def test_the_authenticated_read_is_noted_for_the_health_endpoint(
    align_sandbox: Any, settings: Any
) -> None:
    from align_integration.workflows.reachability import last_reachability

    without_itero(settings)
    align_sandbox.inject_fault("find_patients", status=503, times=None)
    doctor()
    last = last_reachability()
    assert last is not None and not last.reachable and last.status == 503
    align_sandbox.clear_faults()
    doctor()
    last = last_reachability()
    assert last is not None and last.reachable and last.call == "find_patients"
