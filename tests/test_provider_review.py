"""The review state is enforced on the server (security review, finding 4; CONTRACT.md §10).

``provider-case-action`` acts only on the treatment plan that awaits review, and only on the
one the form names: with no plan awaiting (none yet, or already reviewed) or a stale one it
answers 409 and stores and sends nothing.  A small per-case limit answers 429.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.models import AlignCase, CaseAsset, CaseEvent, RemoteOperation
from tests.images import jpeg_data_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_case(make_case: Any, provider: Any, align_sandbox: Any, flags: Any) -> Any:
    """A case sent to the sandbox; no treatment plan yet."""
    align_sandbox.auto_callbacks = False
    flags("set-align-order-status")
    case = make_case(provider=provider)
    assert Align().initiate_align_order(None, case).ok
    return case


def new_plan(case: Any, plan_id: str = "PL-1", version: int = 1) -> None:
    """What a treatment_plan.submitted callback does to the case's state."""
    AlignCase.objects.filter(case=case).update(
        treatment_plan_id=plan_id, treatment_plan_version=version, awaiting_provider_review=True
    )


@pytest.fixture
def plan_case(sent_case: Any) -> Any:
    new_plan(sent_case)
    return sent_case


def doctor(provider: Any) -> Client:
    client = Client()
    client.force_login(provider.user)
    return client


def post(client: Client, case: Any, action: str, **fields: Any) -> Any:
    url = reverse("align_integration:provider-case-action", kwargs={"case_ref": str(case.uuid)})
    data = {"action": action, **fields}
    if action == "approve":
        data.setdefault("acceptance_screenshot", jpeg_data_url())
    else:
        data.setdefault("comment", "Close the gap at 21")
    return client.post(url, data, HTTP_ACCEPT="application/json")


def screenshots(case: Any) -> int:
    return CaseAsset.objects.filter(case=case, kind=CaseAsset.CCACCEPTSCREEN).count()


def events(case: Any) -> int:
    return CaseEvent.objects.filter(case=case).count()


def awaiting(case: Any) -> bool:
    return AlignCase.objects.get(case=case).awaiting_provider_review


@pytest.mark.parametrize("action", ["approve", "revise"])
def test_no_plan_yet_is_409_and_nothing_is_stored_or_sent(
    sent_case: Any, provider: Any, align_sandbox: Any, action: str
) -> None:
    before = events(sent_case)
    response = post(doctor(provider), sent_case, action)
    assert response.status_code == 409
    assert response.json()["errors"] == [
        "No treatment plan awaits your review: none has arrived yet, or it was already reviewed."
    ]
    assert screenshots(sent_case) == 0 and events(sent_case) == before
    assert align_sandbox.count("clincheck_revise") == 0
    assert not RemoteOperation.objects.filter(case=sent_case, kind="clincheck_revise").exists()


def test_a_case_never_sent_is_409_too(make_case: Any, provider: Any) -> None:
    case = make_case(provider=provider)
    assert post(doctor(provider), case, "approve").status_code == 409
    assert screenshots(case) == 0 and not AlignCase.objects.filter(case=case).exists()


def test_a_second_approve_is_409_and_stores_no_second_screenshot(
    plan_case: Any, provider: Any
) -> None:
    client = doctor(provider)
    assert post(client, plan_case, "approve", plan_id="PL-1", plan_version="1").status_code == 200
    assert not awaiting(plan_case)
    before = events(plan_case)
    assert post(client, plan_case, "approve", plan_id="PL-1", plan_version="1").status_code == 409
    assert screenshots(plan_case) == 1 and events(plan_case) == before


def test_revise_after_approve_is_409_and_nothing_is_sent(
    plan_case: Any, provider: Any, align_sandbox: Any
) -> None:
    client = doctor(provider)
    assert post(client, plan_case, "approve").status_code == 200
    assert post(client, plan_case, "revise", comment="Actually, no").status_code == 409
    assert align_sandbox.count("clincheck_revise") == 0


def test_a_second_revision_request_is_409_until_a_new_plan_arrives(
    plan_case: Any, provider: Any, align_sandbox: Any
) -> None:
    client = doctor(provider)
    assert post(client, plan_case, "revise", comment="Close the gap").status_code == 200
    assert not awaiting(plan_case)
    assert post(client, plan_case, "revise", comment="And more").status_code == 409
    assert post(client, plan_case, "approve").status_code == 409
    assert align_sandbox.count("clincheck_revise") == 1 and screenshots(plan_case) == 0

    new_plan(plan_case, "PL-2", 2)
    assert post(client, plan_case, "approve", plan_id="PL-2", plan_version="2").status_code == 200
    assert screenshots(plan_case) == 1


@pytest.mark.parametrize("action", ["approve", "revise"])
@pytest.mark.parametrize(
    "posted", [{"plan_id": "PL-1", "plan_version": "1"}, {"plan_id": "PL-OLD", "plan_version": "2"}]
)
def test_a_stale_plan_is_409_and_nothing_is_stored_or_sent(
    plan_case: Any, provider: Any, align_sandbox: Any, action: str, posted: dict[str, str]
) -> None:
    new_plan(plan_case, "PL-2", 2)  # arrived while the page with plan 1 was open
    before = events(plan_case)
    response = post(doctor(provider), plan_case, action, **posted)
    assert response.status_code == 409
    assert "no longer the treatment plan under review" in response.json()["errors"][0]
    assert screenshots(plan_case) == 0 and events(plan_case) == before
    assert align_sandbox.count("clincheck_revise") == 0
    assert awaiting(plan_case)


@pytest.mark.parametrize("version", ["abc", "-1", "1.5", "9" * 20])
def test_a_malformed_version_is_400(plan_case: Any, provider: Any, version: str) -> None:
    response = post(doctor(provider), plan_case, "approve", plan_version=version)
    assert response.status_code == 400
    assert screenshots(plan_case) == 0 and awaiting(plan_case)


def test_a_refused_revision_leaves_the_plan_awaiting_review(
    plan_case: Any, provider: Any, align_sandbox: Any
) -> None:
    client = doctor(provider)
    assert post(client, plan_case, "revise", comment="   ").status_code == 400
    assert awaiting(plan_case)
    align_sandbox.inject_fault("clincheck_revise", status=422)
    assert post(client, plan_case, "revise").status_code == 422
    assert awaiting(plan_case)  # the provider may correct and send again, or approve
    assert post(client, plan_case, "revise", comment="Other words").status_code == 200
    assert not awaiting(plan_case)


def test_a_revision_retried_in_the_background_keeps_the_review_closed(
    plan_case: Any, provider: Any, align_sandbox: Any, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 0},
    }
    align_sandbox.inject_fault("clincheck_revise", status=503)
    client = doctor(provider)
    assert post(client, plan_case, "revise").status_code == 503
    operation = RemoteOperation.objects.get(case=plan_case, kind="clincheck_revise")
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    assert not awaiting(plan_case)  # it will still be sent: no second request, no approve
    assert post(client, plan_case, "approve").status_code == 409


def test_the_page_posts_the_plan_it_shows(plan_case: Any, provider: Any) -> None:
    new_plan(plan_case, "PL-7", 7)
    url = reverse(
        "align_integration:provider-case-review", kwargs={"case_ref": str(plan_case.uuid)}
    )
    page = doctor(provider).get(url).content.decode()
    assert page.count('name="plan_id" value="PL-7"') == 2
    assert page.count('name="plan_version" value="7"') == 2


def test_too_many_actions_on_a_case_are_429(
    plan_case: Any, provider: Any, align_sandbox: Any, settings: Any, make_case: Any
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "PROVIDER_ACTION_LIMIT": 2}
    client = doctor(provider)
    bad = "data:image/jpeg;base64,@@@@"
    assert post(client, plan_case, "approve", acceptance_screenshot=bad).status_code == 400
    assert post(client, plan_case, "approve", acceptance_screenshot=bad).status_code == 400
    response = post(client, plan_case, "approve")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600
    assert "Too many review actions" in response.json()["errors"][0]
    assert post(client, plan_case, "revise").status_code == 429
    assert screenshots(plan_case) == 0 and awaiting(plan_case)
    assert align_sandbox.count("clincheck_revise") == 0
    # The limit is per case: the provider's other case is not held back.
    other = make_case(provider=provider)
    assert Align().initiate_align_order(None, other).ok
    new_plan(other)
    assert post(client, other, "approve").status_code == 200


def test_the_limit_is_counted_in_the_shared_cache(
    plan_case: Any, provider: Any, redis_cache: str, redis_url: str, settings: Any
) -> None:
    import redis

    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "PROVIDER_ACTION_LIMIT": 1}
    assert post(doctor(provider), plan_case, "approve").status_code == 200
    assert redis.Redis.from_url(redis_url).keys(f"*review_actions:{plan_case.pk}:*")
    # Another session (as another process would) finds the same count.
    assert post(doctor(provider), plan_case, "approve").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_two_approves_at_once_store_one_screenshot(
    postgres: None, plan_case: Any, provider: Any
) -> None:
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def approve() -> None:
        try:
            client = doctor(provider)
            barrier.wait(timeout=10)
            statuses.append(post(client, plan_case, "approve").status_code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 409]
    assert screenshots(plan_case) == 1


def test_a_crash_while_sending_a_revision_leaves_the_plan_awaiting_review(
    plan_case: Any, provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from align_integration.facade import Align as Facade

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the host's code failed before anything was sent")

    monkeypatch.setattr(Facade, "set_case_status", broken)
    client = doctor(provider)
    client.raise_request_exception = False
    assert post(client, plan_case, "revise").status_code == 500
    assert awaiting(plan_case)
