"""The test kit's Django helpers, as a host project's tests use them."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, SimpleTestCase

from align_integration.conf import get_setting
from align_integration.models import AlignOrder, CallbackEvent
from align_integration.testing import (
    Sandbox,
    override_align_settings,
    post_callback,
    sandbox_settings,
    use_sandbox,
)


def sales_order(case: Any, number: str = "SO-1") -> dict[str, Any]:
    return {
        "caseId": str(case.pk),
        "salesOrderNumber": number,
        "patientId": "P-1",
        "orderType": "primary",
        "createdAt": "2026-01-01T00:00:00Z",
    }


def test_post_callback_signs_with_the_apps_secret(client: Client, make_case: Any) -> None:
    case = make_case()
    response = post_callback(client, "sales_order.created", sales_order(case), webhook_id="msg_1")
    assert response.status_code == 200, response.content
    assert AlignOrder.objects.get(case=case).sales_order_number == "SO-1"
    again = post_callback(client, "sales_order.created", sales_order(case), webhook_id="msg_1")
    assert again.status_code == 200
    assert CallbackEvent.objects.count() == 1  # a redelivery keeps its webhook-id


def test_post_callback_with_a_wrong_secret_is_refused(client: Client, make_case: Any) -> None:
    other = "whsec_b3RoZXItc2VjcmV0LXR3by0wOTg3NjU0MzIx"
    response = post_callback(client, "sales_order.created", sales_order(make_case()), secret=other)
    assert response.status_code in (401, 403)
    assert CallbackEvent.objects.count() == 0


def test_override_align_settings_merges_keys() -> None:
    before = settings.ALIGN_INTEGRATION
    with override_align_settings(SERVICE={"RETRIES": 0}, HEALTH_TOKEN="t"):
        assert get_setting("SERVICE", "RETRIES") == 0
        assert get_setting("SERVICE", "BASE_URL") == before["SERVICE"]["BASE_URL"]
        assert get_setting("HEALTH_TOKEN") == "t"
        assert get_setting("CALLBACK_SECRETS") == before["CALLBACK_SECRETS"]
    assert settings.ALIGN_INTEGRATION == before


@override_align_settings(HEALTH_TOKEN="from-decorator")
def test_override_align_settings_as_a_decorator() -> None:
    assert get_setting("HEALTH_TOKEN") == "from-decorator"


@override_align_settings(HEALTH_TOKEN="on-the-class")
class TestOverrideOnAUnittestClass(SimpleTestCase):
    def test_the_class_sees_the_change(self) -> None:
        assert get_setting("HEALTH_TOKEN") == "on-the-class"


def test_use_sandbox_points_the_settings_at_it() -> None:
    sandbox = Sandbox()  # not started: only its URL and credentials are read
    sandbox.port = 8123
    with use_sandbox(sandbox):
        assert get_setting("SERVICE", "BASE_URL") == "http://127.0.0.1:8123"
        assert get_setting("CALLBACK_SECRETS")[0] == sandbox.callback_secret
        assert get_setting("ITERO", "LOGIN_URL") == "http://127.0.0.1:8123/itero/login"
        assert "127.0.0.1" in get_setting("ITERO", "ALLOWED_HOSTS")
    assert get_setting("SERVICE", "BASE_URL") != "http://127.0.0.1:8123"


def test_sandbox_settings_keep_other_keys_and_secrets() -> None:
    sandbox = Sandbox()
    config = sandbox_settings(sandbox, {"CALLBACK_SECRETS": "whsec_old", "HEALTH_TOKEN": "h"})
    assert config["CALLBACK_SECRETS"] == [sandbox.callback_secret, "whsec_old"]
    assert config["HEALTH_TOKEN"] == "h"


@pytest.mark.django_db(transaction=True)
def test_fixture_callbacks_reach_a_live_server(
    align_sandbox: Sandbox, live_server: Any, make_case: Any
) -> None:
    case = make_case()
    align_sandbox.callback_url = f"{live_server.url}/align/callbacks/"
    assert align_sandbox.send_callback("sales_order.created", sales_order(case, "SO-9")) == 200
    [sent] = align_sandbox.wait_for_callbacks(1, event_type="sales_order.created")
    assert sent.status == 200 and sent.case_id == str(case.pk)
    assert AlignOrder.objects.get(case=case).sales_order_number == "SO-9"
