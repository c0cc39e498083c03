"""The ``health`` endpoint: each check, 200 or 503, who may read it, and no vendor call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from waffle.models import Switch

from align_integration import Align
from align_integration.models import IteroConnection, RemoteOperation

pytestmark = pytest.mark.django_db

TOKEN = "health-token-0123456789abcdef"
HEADER = "HTTP_X_ALIGN_HEALTH_TOKEN"


@pytest.fixture
def healthy(align_sandbox: Any, settings: Any) -> Any:
    """A deployment whose checks all pass: paired with iTero, a health token set."""
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "HEALTH_TOKEN": TOKEN}
    IteroConnection.objects.create(pk=1, state=IteroConnection.PAIRED, account_number="LAB-7")
    return align_sandbox


def probe(client: Client | None = None, **headers: str) -> tuple[int, dict[str, Any]]:
    response = (client or Client()).get(reverse("align_integration:health"), **headers)
    return response.status_code, response.json()


def states(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["state"] for name, check in body["checks"].items()}


def test_healthy_with_the_token_and_no_call_to_the_sandbox(healthy: Any) -> None:
    status, body = probe(**{HEADER: TOKEN})
    assert status == 200, body
    assert body["healthy"] is True
    assert states(body) == {
        "settings": "ok",
        "cache": "ok",
        "tasks": "ok",
        "backlog": "ok",
        "itero": "ok",
        "paused": "ok",
        "align": "warning",  # nothing noted yet: a warning, not a failure
    }
    assert "paired with lab account LAB-7" in body["checks"]["itero"]["detail"]
    assert healthy.requests == []


def test_who_may_read_it(healthy: Any, staff_user: Any, django_user_model: Any) -> None:
    assert probe()[0] == 403
    assert probe(**{HEADER: "wrong"})[0] == 403
    assert probe(**{HEADER: TOKEN[:-1]})[0] == 403
    assert probe(**{HEADER: TOKEN + "x"})[0] == 403
    someone = django_user_model.objects.create_user(username="someone", password="pw")
    client = Client()
    client.force_login(someone)
    assert probe(client)[0] == 403
    assert probe(client, **{HEADER: TOKEN})[0] == 200
    staff = Client()
    staff.force_login(staff_user)
    status, body = probe(staff)
    assert status == 200 and body["healthy"] is True
    response = staff.post(reverse("align_integration:health"))
    assert response.status_code == 405
    assert "no-cache" in Client().get(reverse("align_integration:health"))["Cache-Control"]


def test_an_empty_token_setting_disables_header_access(healthy: Any, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "HEALTH_TOKEN": ""}
    assert probe(**{HEADER: ""})[0] == 403
    assert probe(**{HEADER: TOKEN})[0] == 403


def test_settings_check(healthy: Any, settings: Any) -> None:
    service = {**settings.ALIGN_INTEGRATION["SERVICE"], "CLIENT_ID": ""}
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "SERVICE": service}
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503 and body["healthy"] is False
    assert states(body)["settings"] == "failed"
    assert "align_integration.E001" in body["checks"]["settings"]["detail"]


def test_cache_check(healthy: Any, settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "TOKEN_CACHE": "broken"}
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503
    assert states(body)["cache"] == "failed" and states(body)["align"] == "failed"
    assert "ConnectionError" in body["checks"]["cache"]["detail"]


def test_tasks_check(healthy: Any, settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "no.such.Backend"}}
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503 and states(body)["tasks"] == "failed"


def test_backlog_check(healthy: Any, settings: Any, make_case: Any) -> None:
    operation = RemoteOperation.objects.create(
        case=make_case(),
        kind=RemoteOperation.CLINCHECK_ACCEPT,
        dedupe_key="x",
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1),
    )
    status, body = probe(**{HEADER: TOKEN})
    assert status == 200 and "1 operations due" in body["checks"]["backlog"]["detail"]
    operation.next_attempt_at = timezone.now() - dt.timedelta(minutes=20)
    operation.save()
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503 and states(body)["backlog"] == "failed"
    assert "over 900 s" in body["checks"]["backlog"]["detail"]


def test_pairing_check(healthy: Any) -> None:
    IteroConnection.objects.filter(pk=1).update(state=IteroConnection.NEEDS_REPAIRING)
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503 and states(body)["itero"] == "failed"
    IteroConnection.objects.filter(pk=1).delete()
    assert probe(**{HEADER: TOKEN})[0] == 503


def test_pause_switch_is_a_warning(healthy: Any) -> None:
    Switch.objects.create(name="align-outbound-paused", active=True)
    status, body = probe(**{HEADER: TOKEN})
    assert status == 200 and states(body)["paused"] == "warning"
    assert "align-outbound-paused" in body["checks"]["paused"]["detail"]


def test_align_reachability_is_the_last_call_the_app_made(
    healthy: Any, make_case: Any, redis_cache: str
) -> None:
    """Noted by the operation engine in the shared (Redis) token cache; read, never asked."""
    healthy.inject_fault("create_patient", status=503, times=None)
    assert not Align().initiate_align_order(None, make_case()).ok
    calls = len(healthy.requests)
    status, body = probe(**{HEADER: TOKEN})
    assert status == 503 and states(body)["align"] == "failed"
    detail = body["checks"]["align"]["detail"]
    assert "create_patient" in detail and "AlignServiceUnavailable (HTTP 503)" in detail
    assert len(healthy.requests) == calls  # the probe asked nobody

    healthy.clear_faults()
    assert Align().initiate_align_order(None, make_case()).ok
    status, body = probe(**{HEADER: TOKEN})
    assert status == 200 and states(body)["align"] == "ok"

    # A refusal of one request is an answer: the service is reachable.
    healthy.inject_fault("create_patient", status=422, times=None)
    assert not Align().initiate_align_order(None, make_case()).ok
    status, body = probe(**{HEADER: TOKEN})
    assert status == 200 and "HTTP 422" in body["checks"]["align"]["detail"]
