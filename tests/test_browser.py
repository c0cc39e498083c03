"""A real browser: Playwright drives Debian's Chromium against the live server.

The provider approves the treatment plan; html2canvas (vendored) captures the plan panel
in the page; the server stores it; the stored asset must be a valid JPEG of that panel.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from PIL import Image

from align_integration.models import AlignCase, CaseAsset
from tests.conftest import chromium_path, require

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium_path()
    require(executable is not None, "Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes meanwhile are ordinary blocking calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_provider_approves_and_the_plan_panel_is_stored_as_jpeg(
    browser: Any, live_server: Any, make_case: Any, provider: Any
) -> None:
    case = make_case(provider=provider)
    AlignCase.objects.create(
        case=case,
        patient_id="P-1",
        order_id="O-1",
        treatment_plan_id="PLAN-XYZ",
        treatment_plan_version=3,
        awaiting_provider_review=True,
    )
    client = Client()
    client.force_login(provider.user)
    session_id = client.cookies["sessionid"].value

    context = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
    context.add_cookies([{"name": "sessionid", "value": session_id, "url": live_server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    review = reverse("align_integration:provider-case-review", kwargs={"case_ref": str(case.uuid)})
    page.goto(live_server.url + review)
    panel = page.locator(".patient-info-comments")
    assert "PLAN-XYZ" in panel.inner_text()
    box = panel.bounding_box()

    with page.expect_navigation():
        page.click("#align-approve")
    assert "Approved" in page.content()
    assert errors == []

    try:
        asset = CaseAsset.objects.get(case=case, kind=CaseAsset.CCACCEPTSCREEN)
        with asset.file.open("rb") as stored:
            content = stored.read()
    finally:
        # Playwright's sync API switches greenlets and Django keeps a connection per
        # context: close the one these queries opened, or it outlives the test database.
        connections.close_all()
    image = Image.open(io.BytesIO(content))
    assert image.format == "JPEG"
    image.load()
    assert abs(image.width - round(box["width"])) <= 2
    assert abs(image.height - round(box["height"])) <= 2
    # The panel's light background dominates the picture: it is not a blank or black frame.
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours and len(colours) > 10
    context.close()
