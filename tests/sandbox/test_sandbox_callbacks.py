"""Signed Align callbacks: automatic sequences after orders and ClinCheck, and manual sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks import Webhook

from align_integration.testing import CallbackReceiver, Delivery
from align_integration.testing.sandbox import Sandbox

Auth = Callable[..., dict[str, str]]


def verified(sandbox: Sandbox, delivery: Delivery) -> dict[str, Any]:
    """The event, after checking its Standard Webhooks signature with the sandbox's secret."""
    event = Webhook(sandbox.callback_secret).verify(delivery.body, delivery.headers)
    assert delivery.headers["webhook-id"].startswith("msg_")
    assert set(event) == {"type", "timestamp", "data"}
    return dict(event)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_order_sends_the_callback_sequence(
    sandbox: Sandbox, receiver: CallbackReceiver, make_order: Callable[..., str]
) -> None:
    sandbox.callback_url = f"{receiver.url}/align/callbacks"
    make_order("C-1")
    events = [verified(sandbox, d) for d in receiver.wait(4)]
    assert [e["type"] for e in events] == [
        "sales_order.created",
        "sales_order.created",
        "treatment_plan.submitted",
        "case.status_changed",
    ]
    primary, secondary, plan, status = (e["data"] for e in events)
    patient_id = sandbox.patients[0]["patientId"]
    assert primary["orderType"] == "primary" and secondary["orderType"] == "secondary"
    for sales_order in (primary, secondary):
        assert sales_order["caseId"] == "C-1"
        assert sales_order["patientId"] == patient_id
        assert sales_order["salesOrderNumber"].startswith("SO-")
        assert parse_time(sales_order["createdAt"]).tzinfo is not None
    assert primary["salesOrderNumber"] != secondary["salesOrderNumber"]
    assert plan["version"] == 1 and plan["caseId"] == "C-1" and plan["planId"]
    assert status["status"] == "treatment_plan_ready"
    assert parse_time(status["changedAt"]) >= parse_time(plan["createdAt"])
    assert receiver.deliveries[0].path == "/align/callbacks"
    recorded = sandbox.wait_for("callback", 4)
    assert [r.status for r in recorded] == [200] * 4


def test_revision_and_accept_callbacks(
    sandbox: Sandbox, receiver: CallbackReceiver, auth: Auth, make_order: Callable[..., str]
) -> None:
    sandbox.callback_url = receiver.url
    make_order("C-1")
    receiver.wait(4)
    requests.put(
        f"{sandbox.url}/orders/C-1/modify",
        data={"caseId": "C-1", "mrn": "M", "comments": "more"},
        headers=auth(),
        timeout=5,
    )
    revised = [verified(sandbox, d) for d in receiver.wait(6)[4:]]
    assert [e["type"] for e in revised] == ["treatment_plan.submitted", "case.status_changed"]
    assert revised[0]["data"]["version"] == 2
    requests.put(
        f"{sandbox.url}/orders/C-1/accept",
        data={"caseId": "C-1", "mrn": "M", "vault_id": "v", "external_key": "k"},
        headers=auth(),
        timeout=5,
    )
    accepted = verified(sandbox, receiver.wait(7)[6])
    assert accepted["type"] == "case.status_changed"
    assert accepted["data"]["status"] == "accepted"


def test_no_callbacks_when_disabled_or_replayed(
    sandbox: Sandbox, receiver: CallbackReceiver, auth: Auth, make_patient: Callable[..., str]
) -> None:
    sandbox.callback_url = receiver.url
    patient_id = make_patient("C-1")
    body = {
        "caseId": "C-1",
        "patientId": patient_id,
        "mrn": "M",
        "orderType": "IAS",
        "treatmentOption": "",
        "chiefConcern": "",
    }
    headers = auth("order-key")
    for _ in range(2):  # the replay acts once, so one sequence of four callbacks
        requests.post(f"{sandbox.url}/orders", json=body, headers=headers, timeout=5)
    receiver.wait(4)
    assert sandbox.wait_idle(2)
    assert len(receiver.deliveries) == 4
    sandbox.auto_callbacks = False
    requests.post(f"{sandbox.url}/orders", json=body, headers=auth(), timeout=5)
    assert sandbox.wait_idle(2)
    assert len(receiver.deliveries) == 4


def test_send_callback_by_hand(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    moment = datetime.now(UTC)
    status = sandbox.send_callback(
        "case.status_changed",
        {"caseId": "C-1", "status": "shipped", "changedAt": "2024-01-01T00:00:00Z"},
        url=receiver.url,
        webhook_id="msg_fixed",
        timestamp=moment,
    )
    assert status == 200
    delivery = receiver.wait(1)[0]
    event = verified(sandbox, delivery)
    assert delivery.headers["webhook-id"] == "msg_fixed"
    assert delivery.headers["webhook-timestamp"] == str(int(moment.timestamp()))
    assert event["data"]["status"] == "shipped"
    # A redelivery keeps its webhook-id.
    sandbox.send_callback(
        "case.status_changed", event["data"], url=receiver.url, webhook_id="msg_fixed"
    )
    assert receiver.wait(2)[1].headers["webhook-id"] == "msg_fixed"


def test_send_callback_with_another_secret(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    sandbox.send_callback("x.y", {}, url=receiver.url, secret=secret)
    delivery = receiver.wait(1)[0]
    assert Webhook(secret).verify(delivery.body, delivery.headers)["type"] == "x.y"


def test_host_errors_and_unreachable_hosts_are_recorded(
    sandbox: Sandbox, receiver: CallbackReceiver
) -> None:
    receiver.status = 500
    assert sandbox.send_callback("x.y", {}, url=receiver.url) == 500
    assert sandbox.calls("callback")[0].status == 500
    assert sandbox.send_callback("x.y", {}, url="http://127.0.0.1:9/nothing") == 0
    failed = sandbox.calls("callback")[1]
    assert failed.status is None and failed.error


def test_reset_drops_pending_callbacks(
    sandbox: Sandbox, receiver: CallbackReceiver, make_order: Callable[..., str]
) -> None:
    sandbox.callback_url = receiver.url
    sandbox.callback_delay = 0.3
    make_order("C-1")
    sandbox.reset()
    sandbox.callback_url = receiver.url
    assert sandbox.wait_idle(2)
    assert receiver.deliveries == []


def test_treatment_plans_carry_the_viewer_url_when_configured(
    sandbox: Sandbox, receiver: CallbackReceiver, auth: Auth, make_order: Callable[..., str]
) -> None:
    sandbox.callback_url = receiver.url
    sandbox.plan_viewer_url = "https://viewer.example/{caseId}/{planId}?v={version}"
    make_order("C-1")
    plan = verified(sandbox, receiver.wait(4)[2])["data"]
    assert plan["viewerUrl"] == f"https://viewer.example/C-1/{plan['planId']}?v=1"
    requests.put(
        f"{sandbox.url}/orders/C-1/modify",
        data={"caseId": "C-1", "mrn": "M", "comments": "more"},
        headers=auth(),
        timeout=5,
    )
    revised = verified(sandbox, receiver.wait(6)[4])["data"]
    assert revised["viewerUrl"].endswith(f"/{revised['planId']}?v=2")


def test_no_viewer_url_by_default(
    sandbox: Sandbox, receiver: CallbackReceiver, make_order: Callable[..., str]
) -> None:
    sandbox.callback_url = receiver.url
    sandbox.plan_viewer_url = None
    make_order("C-1")
    assert "viewerUrl" not in verified(sandbox, receiver.wait(4)[2])["data"]


def test_callback_settings_over_http(sandbox: Sandbox, receiver: CallbackReceiver) -> None:
    answer = requests.post(
        f"{sandbox.url}/__sandbox__/config",
        json={
            "callback_url": receiver.url,
            "auto_callbacks": "false",
            "plan_viewer_url": "https://viewer.example/{planId}",
        },
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["auto_callbacks"] is False
    assert sandbox.callback_url == receiver.url
    assert sandbox.plan_viewer_url == "https://viewer.example/{planId}"
    requests.post(f"{sandbox.url}/__sandbox__/config", json={"plan_viewer_url": None}, timeout=5)
    assert sandbox.plan_viewer_url is None
    bad = requests.post(f"{sandbox.url}/__sandbox__/config", json={"colour": "red"}, timeout=5)
    assert bad.status_code == 400
