"""The provider page in people's words: Align statuses as labels, and the ClinCheck viewer
link a treatment-plan callback may carry (https only; a bad link never costs the plan)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration.models import AlignCase, CallbackEvent
from align_integration.models.cases import ALIGN_STATUS_LABELS, status_label
from tests.webhook_cases import post_signed, signed_headers

VIEWER = "https://clincheck.example.com/viewer/PLAN-1?token=abc"


def plan_event(case: Any, plan: str = "PLAN-1", version: int = 1, **extra: Any) -> str:
    data = {
        "caseId": str(case.pk),
        "planId": plan,
        "version": version,
        "createdAt": f"2026-11-20T11:0{version}:00Z",
        **extra,
    }
    return json.dumps({"type": "treatment_plan.submitted", "data": data})


def deliver(body: str) -> int:
    url = reverse("align_integration:callbacks")
    return int(post_signed(Client(), url, body, signed_headers(body)).status_code)


class Page(HTMLParser):
    """The page's text and the attributes of its ClinCheck viewer link, if any."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.viewer_link: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "a" and "align-viewer-link" in found.get("class", "").split():
            self.viewer_link = found

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def get_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def review_page(case: Any, provider: Any) -> Page:
    client = Client()
    client.force_login(provider.user)
    url = reverse("align_integration:provider-case-review", kwargs={"case_ref": str(case.uuid)})
    response = client.get(url)
    assert response.status_code == 200
    return Page(response.content.decode())


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("treatment_plan_ready", "Treatment plan ready for review"),
        ("accepted", "Treatment plan accepted"),
        ("REVISION_REQUESTED", "Revision requested"),
        ("in_transit", "In transit"),
        ("awaiting-doctor.signature", "Awaiting doctor signature"),
        ("", ""),
    ],
)
def test_status_labels_with_a_readable_fallback(status: str, label: str) -> None:
    assert status_label(status) == label


def test_every_label_is_words_not_a_code() -> None:
    for code, label in ALIGN_STATUS_LABELS.items():
        assert "_" not in label and label[0].isupper(), code


@pytest.mark.django_db
def test_page_shows_the_label_and_the_viewer_link(make_case: Any, provider: Any) -> None:
    case = make_case(provider=provider)
    assert deliver(plan_event(case, viewerUrl=VIEWER)) == 200
    AlignCase.objects.filter(case=case).update(status="treatment_plan_ready")
    page = review_page(case, provider)
    assert "Treatment plan ready for review" in page.get_text()
    assert "treatment_plan_ready" not in page.get_text()
    link = page.viewer_link
    assert link is not None and link["href"] == VIEWER
    assert link["target"] == "_blank" and "noopener" in link["rel"].split()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        "http://clincheck.example.com/viewer/PLAN-1",
        "javascript:alert(1)",
        "https://user:pw@clincheck.example.com/viewer",
        "//clincheck.example.com/viewer",
        "https://" + "a" * 2000 + ".example.com/",
        "not a url",
        12,
        ["https://clincheck.example.com/"],
    ],
)
def test_a_bad_viewer_url_is_ignored_and_the_plan_kept(
    make_case: Any, provider: Any, bad: Any
) -> None:
    case = make_case(provider=provider)
    assert deliver(plan_event(case, viewerUrl=bad)) == 200
    state = AlignCase.objects.get(case=case)
    assert state.treatment_plan_id == "PLAN-1" and state.awaiting_provider_review
    assert state.treatment_plan_viewer_url == ""
    assert CallbackEvent.objects.get().state == CallbackEvent.PROCESSED
    assert review_page(case, provider).viewer_link is None


@pytest.mark.django_db
def test_a_newer_plan_replaces_the_link_and_an_older_one_does_not(
    make_case: Any, provider: Any
) -> None:
    case = make_case(provider=provider)
    assert deliver(plan_event(case, "PLAN-2", 2, viewerUrl=VIEWER + "&v=2")) == 200
    assert deliver(plan_event(case, "PLAN-1", 1, viewerUrl=VIEWER)) == 200  # late, older
    assert AlignCase.objects.get(case=case).treatment_plan_viewer_url == VIEWER + "&v=2"
    assert deliver(plan_event(case, "PLAN-3", 3)) == 200  # newer, without a link
    state = AlignCase.objects.get(case=case)
    assert (state.treatment_plan_id, state.treatment_plan_viewer_url) == ("PLAN-3", "")


@pytest.mark.django_db(transaction=True)
def test_viewer_link_from_a_sandbox_callback(
    make_case: Any, provider: Any, align_sandbox: Any, live_server: Any, staff_user: Any
) -> None:
    case = make_case(provider=provider)
    align_sandbox.callback_url = live_server.url + reverse("align_integration:callbacks")
    data = {"caseId": str(case.pk), "planId": "PLAN-9", "version": 1}
    sent = align_sandbox.send_callback(
        "treatment_plan.submitted",
        {**data, "createdAt": "2026-11-20T11:00:00Z", "viewerUrl": VIEWER},
    )
    assert sent == 200
    changed = {"caseId": str(case.pk), "status": "in_manufacturing"}
    assert (
        align_sandbox.send_callback(
            "case.status_changed", {**changed, "changedAt": "2026-11-21T11:00:00Z"}
        )
        == 200
    )
    page = review_page(case, provider)
    assert page.viewer_link is not None and page.viewer_link["href"] == VIEWER
    assert "Aligners in manufacturing" in page.get_text()
    staff = Client()
    staff.force_login(staff_user)
    panel = staff.get(
        reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(case.uuid)})
    )
    assert "Aligners in manufacturing" in panel.content.decode()
