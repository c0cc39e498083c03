"""Provider portal: approve stores the screenshot, revise goes out at once, only the
case's provider may act, bad screenshots are a 400 with nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration import Align
from align_integration.models import AlignCase, CaseAsset, CaseEvent, RemoteOperation
from align_integration.signals import aligners_purchased
from align_integration.workflows.clincheck.screenshots import ScreenshotRejected
from tests.images import data_url, image_bytes, jpeg_data_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan_case(make_case: Any, provider: Any, align_sandbox: Any) -> Any:
    """A case sent to the sandbox whose treatment plan awaits the provider's review."""
    align_sandbox.auto_callbacks = False
    case = make_case(provider=provider)
    assert Align().initiate_align_order(None, case).ok
    AlignCase.objects.filter(case=case).update(
        treatment_plan_id="PL-1", treatment_plan_version=1, awaiting_provider_review=True
    )
    return case


def action_url(case: Any) -> str:
    return reverse("align_integration:provider-case-action", kwargs={"case_ref": str(case.uuid)})


def provider_client(provider: Any) -> Client:
    client = Client()
    client.force_login(provider.user)
    return client


def test_approve_stores_the_screenshot_as_a_jpeg_asset(plan_case: Any, provider: Any) -> None:
    response = provider_client(provider).post(
        action_url(plan_case),
        {"action": "approve", "acceptance_screenshot": jpeg_data_url()},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "errors": []}
    asset = CaseAsset.objects.get(case=plan_case, kind=CaseAsset.CCACCEPTSCREEN)
    assert asset.file.read().startswith(b"\xff\xd8\xff")
    assert asset.vault_id and asset.external_key
    assert asset.created_by == provider.user
    assert not AlignCase.objects.get(case=plan_case).awaiting_provider_review


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("empty", ""),
        ("png claiming jpeg", data_url(image_bytes("PNG"), "image/jpeg")),
        ("png", data_url(image_bytes("PNG"), "image/png")),
        ("not base64", "data:image/jpeg;base64,@@@@"),
        ("not a data url", "https://example.com/x.jpg"),
        ("truncated jpeg", data_url(image_bytes("JPEG")[:200])),
        ("jpeg magic then junk", data_url(b"\xff\xd8\xff" + b"\x00" * 100)),
    ],
)
def test_bad_screenshot_is_a_400_and_nothing_is_stored(
    plan_case: Any, provider: Any, label: str, value: str
) -> None:
    response = provider_client(provider).post(
        action_url(plan_case), {"action": "approve", "acceptance_screenshot": value}
    )
    assert response.status_code == 400
    assert not CaseAsset.objects.filter(kind=CaseAsset.CCACCEPTSCREEN).exists()


def test_oversized_screenshots_are_refused(plan_case: Any, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SCREENSHOT_MAX_PIXELS": 100 * 100,
        "SCREENSHOT_MAX_BYTES": 50_000,
    }
    with pytest.raises(ScreenshotRejected, match="pixels"):
        Align().create_acceptance_screenshot(plan_case, jpeg_data_url((200, 200)))
    with pytest.raises(ScreenshotRejected, match="larger"):
        Align().create_acceptance_screenshot(plan_case, "data:image/jpeg;base64," + "A" * 80_000)
    assert not CaseAsset.objects.filter(kind=CaseAsset.CCACCEPTSCREEN).exists()


def test_another_provider_gets_404_and_nothing_is_sent(
    plan_case: Any, django_user_model: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    from tests.testapp.models import Provider

    other = Provider.objects.create(
        user=django_user_model.objects.create_user(username="other", password="pw")
    )
    client = provider_client(other)
    for data in (
        {"action": "approve", "acceptance_screenshot": jpeg_data_url()},
        {"action": "revise", "comment": "move tooth 11"},
    ):
        assert client.post(action_url(plan_case), data).status_code == 404
    review = reverse(
        "align_integration:provider-case-review", kwargs={"case_ref": str(plan_case.uuid)}
    )
    assert client.get(review).status_code == 404
    assert align_sandbox.count("clincheck_accept") == align_sandbox.count("clincheck_revise") == 0
    assert not CaseAsset.objects.filter(kind=CaseAsset.CCACCEPTSCREEN).exists()


def test_anonymous_is_sent_to_login(plan_case: Any) -> None:
    response = Client().post(action_url(plan_case), {"action": "revise", "comment": "x"})
    assert response.status_code == 302


def test_csrf_is_enforced(plan_case: Any, provider: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(provider.user)
    response = client.post(
        action_url(plan_case), {"action": "approve", "acceptance_screenshot": jpeg_data_url()}
    )
    assert response.status_code == 403
    assert (
        not CaseAsset.objects.exists()
        or not CaseAsset.objects.filter(kind=CaseAsset.CCACCEPTSCREEN).exists()
    )


def test_revise_sends_the_comment_at_once(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    response = provider_client(provider).post(
        action_url(plan_case),
        {"action": "revise", "comment": "Close the gap at 21"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    [sent] = align_sandbox.calls("clincheck_revise")
    assert sent.method == "PUT"
    assert sent.path == f"/orders/{plan_case.pk}/modify"
    assert sent.form["comments"] == "Close the gap at 21"
    assert sent.form["mrn"] == plan_case.patient.medical_record_number
    event = CaseEvent.objects.filter(case=plan_case, action="clincheck_revise").last()
    assert "Close the gap" not in event.message


def test_revise_double_submit_sends_once(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    client = provider_client(provider)
    for _ in range(2):
        client.post(action_url(plan_case), {"action": "revise", "comment": "Same words"})
    assert align_sandbox.count("clincheck_revise") == 1


def test_revise_needs_a_comment(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    response = provider_client(provider).post(
        action_url(plan_case), {"action": "revise", "comment": "  "}
    )
    assert response.status_code == 400
    assert align_sandbox.count("clincheck_revise") == 0


def test_revise_with_flag_off_is_404_and_nothing_sent(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status", on=False)
    response = provider_client(provider).post(
        action_url(plan_case), {"action": "revise", "comment": "x"}
    )
    assert response.status_code == 404
    assert align_sandbox.count("clincheck_revise") == 0


def test_unknown_action_is_a_400(plan_case: Any, provider: Any) -> None:
    response = provider_client(provider).post(action_url(plan_case), {"action": "delete"})
    assert response.status_code == 400


def test_accept_sends_the_newest_screenshot_when_aligners_are_bought(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    Align().create_acceptance_screenshot(plan_case, jpeg_data_url(), user=provider.user)
    newest = Align().create_acceptance_screenshot(plan_case, jpeg_data_url((90, 90)))
    aligners_purchased.send(sender=None, case=plan_case, user=provider.user)
    [sent] = align_sandbox.calls("clincheck_accept")
    assert sent.path == f"/orders/{plan_case.pk}/accept"
    assert sent.form["vault_id"] == newest.vault_id
    assert sent.form["external_key"] == newest.external_key
    # Buying again (or a retried signal) does not accept twice.
    aligners_purchased.send(sender=None, case=plan_case, user=provider.user)
    assert align_sandbox.count("clincheck_accept") == 1


def test_aligners_bought_with_flag_off_sends_nothing_and_says_so(
    plan_case: Any, align_sandbox: Any
) -> None:
    Align().create_acceptance_screenshot(plan_case, jpeg_data_url())
    aligners_purchased.send(sender=None, case=plan_case)
    assert align_sandbox.count("clincheck_accept") == 0
    assert CaseEvent.objects.filter(
        case=plan_case, action="clincheck_accept", outcome="skipped"
    ).exists()


def test_accept_without_screenshot_is_a_400(plan_case: Any, align_sandbox: Any) -> None:
    status_code, errors = Align().set_case_status(None, plan_case, "approve")
    assert status_code == 400 and "screenshot" in errors[0]
    assert align_sandbox.count("clincheck_accept") == 0


def test_transient_accept_failure_is_retried_in_the_background_once(
    plan_case: Any, align_sandbox: Any, settings: Any
) -> None:
    from align_integration.worker import run_due_operations

    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "SERVICE": {**settings.ALIGN_INTEGRATION["SERVICE"], "RETRIES": 0},
    }
    Align().create_acceptance_screenshot(plan_case, jpeg_data_url())
    align_sandbox.inject_fault("clincheck_accept", drop="after", times=1)
    result = Align().set_case_status(None, plan_case, "approve")
    assert not result.ok
    operation = RemoteOperation.objects.get(case=plan_case, kind="clincheck_accept")
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    RemoteOperation.objects.filter(pk=operation.pk).update(next_attempt_at=operation.created_at)
    assert run_due_operations() == 1
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    keys = {r.idempotency_key for r in align_sandbox.calls("clincheck_accept")}
    assert len(keys) == 1 and None not in keys


def test_final_failure_is_visible_on_the_timeline(plan_case: Any, align_sandbox: Any) -> None:
    align_sandbox.inject_fault("clincheck_revise", status=422, body={"errors": ["plan closed"]})
    status_code, errors = Align().set_case_status(None, plan_case, "revise", comment="x")
    assert status_code == 422
    operation = RemoteOperation.objects.get(case=plan_case, kind="clincheck_revise")
    assert operation.state == RemoteOperation.FAILED
    assert CaseEvent.objects.filter(
        case=plan_case, action="clincheck_revise", outcome="failed", status_code=422
    ).exists()


def test_comment_with_a_nul_character_is_a_400(
    plan_case: Any, provider: Any, align_sandbox: Any, flags: Any
) -> None:
    flags("set-align-order-status")
    response = provider_client(provider).post(
        action_url(plan_case), {"action": "revise", "comment": "gap\x00here"}
    )
    assert response.status_code == 400
    assert align_sandbox.count("clincheck_revise") == 0
    assert not RemoteOperation.objects.filter(kind="clincheck_revise").exists()


def test_a_screenshot_whose_row_cannot_be_written_leaves_no_file(
    plan_case: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from pathlib import Path

    from django.db import DatabaseError

    def broken_save(self: Any, *args: Any, **kwargs: Any) -> None:
        raise DatabaseError("disk full")

    monkeypatch.setattr(CaseAsset, "save", broken_save)
    with pytest.raises(DatabaseError):
        Align().create_acceptance_screenshot(plan_case, jpeg_data_url())
    stored = [p for p in Path(settings.MEDIA_ROOT).rglob("ccacceptscreen-*")]
    assert stored == []
