"""The callbacks endpoint: signatures, bad input, duplicates, ordering, reprocessing."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from align_integration import signals
from align_integration.cases import align_patient_id, align_sales_order_number
from align_integration.models import AlignCase, AlignOrder, CallbackEvent
from align_integration.workflows.callbacks.events import reprocess
from tests.webhook_cases import SignedEndpointCases, load_fixture, post_signed, signed_headers

URL = "/align/callbacks/"
#: Test receivers are connected and disconnected by this uid, never by clearing a signal.
TEST_RECEIVER = "tests.test_callbacks"


def event(event_type: str, **data: Any) -> str:
    return json.dumps({"type": event_type, "timestamp": "2026-11-20T10:00:00Z", "data": data})


def sales_order(case: Any, number: str, created_at: str, order_type: str = "primary") -> str:
    return event(
        "sales_order.created",
        caseId=str(case.pk),
        salesOrderNumber=number,
        patientId=f"P-{number}",
        orderType=order_type,
        createdAt=created_at,
    )


def send(client: Client, body: str, webhook_id: str | None = None) -> Any:
    return post_signed(client, URL, body, signed_headers(body, webhook_id=webhook_id))


@pytest.mark.django_db
class TestCallbackSignatures(SignedEndpointCases):
    url = URL

    @pytest.fixture(autouse=True)
    def _case(self, make_case: Any) -> None:
        self.case = make_case()

    def valid_body(self) -> str:
        return load_fixture("sales_order_primary.json", case_id=self.case.pk)

    def stored_count(self) -> int:
        return CallbackEvent.objects.count()


def test_url_name_resolves() -> None:
    assert reverse("align_integration:callbacks") == URL


@pytest.mark.django_db
def test_sales_orders_newest_created_at_wins_whatever_the_arrival_order(
    client: Client, make_case: Any
) -> None:
    case = make_case()
    assert send(client, sales_order(case, "SO-2", "2026-11-20T12:00:00Z")).status_code == 200
    assert send(client, sales_order(case, "SO-1", "2026-11-20T09:00:00Z")).status_code == 200
    assert (
        send(client, sales_order(case, "SO-S", "2026-11-20T10:00:00Z", "secondary")).status_code
        == 200
    )
    assert align_sales_order_number(case) == "SO-2"
    assert align_patient_id(case) == "P-SO-2"
    assert align_sales_order_number(case, order_type="secondary") == "SO-S"
    assert case.align_sales_order_number == "SO-2"  # the mixin property
    assert AlignOrder.objects.filter(case=case).count() == 3


@pytest.mark.django_db
def test_redelivery_is_stored_once_and_acted_on_once(
    client: Client, make_case: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = make_case()
    seen: list[Any] = []
    signals.sales_order_received.connect(
        lambda **kw: seen.append(kw["align_order"]), weak=False, dispatch_uid=TEST_RECEIVER
    )
    try:
        body = sales_order(case, "SO-9", "2026-11-20T12:00:00Z")
        with django_capture_on_commit_callbacks(execute=True):
            first = send(client, body, webhook_id="msg_same")
            second = send(client, body, webhook_id="msg_same")
    finally:
        signals.sales_order_received.disconnect(dispatch_uid=TEST_RECEIVER)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert CallbackEvent.objects.count() == 1
    assert AlignOrder.objects.count() == 1
    assert len(seen) == 1


@pytest.mark.django_db
def test_same_sales_order_under_two_webhook_ids_is_one_row(client: Client, make_case: Any) -> None:
    case = make_case()
    body = sales_order(case, "SO-5", "2026-11-20T12:00:00Z")
    send(client, body)
    send(client, body)
    assert CallbackEvent.objects.count() == 2
    assert AlignOrder.objects.count() == 1


@pytest.mark.django_db
def test_older_status_never_overwrites_newer(
    client: Client, make_case: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = make_case()
    changes: list[str] = []
    signals.case_status_changed.connect(
        lambda **kw: changes.append(kw["status"]), weak=False, dispatch_uid=TEST_RECEIVER
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for status, when in [
                ("accepted", "2026-11-20T15:00:00Z"),
                ("treatment_plan_ready", "2026-11-20T12:00:00Z"),
                ("accepted", "2026-11-20T15:00:00Z"),
            ]:
                body = event(
                    "case.status_changed", caseId=str(case.pk), status=status, changedAt=when
                )
                assert send(client, body).status_code == 200
    finally:
        signals.case_status_changed.disconnect(dispatch_uid=TEST_RECEIVER)
    state = AlignCase.objects.get(case=case)
    assert state.status == "accepted"
    assert changes == ["accepted"]


@pytest.mark.django_db
def test_treatment_plan_puts_the_case_in_the_provider_portal(
    client: Client, make_case: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    case = make_case()
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.StatusMovingAdapter",
    }
    plans: list[tuple[str, int]] = []
    signals.treatment_plan_received.connect(
        lambda **kw: plans.append((kw["plan_id"], kw["version"])),
        weak=False,
        dispatch_uid=TEST_RECEIVER,
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            v2 = event(
                "treatment_plan.submitted",
                caseId=str(case.pk),
                planId="PL-2",
                version=2,
                createdAt="2026-11-21T10:00:00Z",
            )
            v1 = event(
                "treatment_plan.submitted",
                caseId=str(case.pk),
                planId="PL-1",
                version=1,
                createdAt="2026-11-20T10:00:00Z",
            )
            assert send(client, v2).status_code == 200
            assert send(client, v1).status_code == 200
    finally:
        signals.treatment_plan_received.disconnect(dispatch_uid=TEST_RECEIVER)
    state = AlignCase.objects.get(case=case)
    assert (state.treatment_plan_id, state.treatment_plan_version) == ("PL-2", 2)
    assert state.awaiting_provider_review
    case.refresh_from_db()
    assert case.status == "IN_PROVIDER_PORTAL"
    assert plans == [("PL-2", 2)]


BAD_BODIES = [
    ("not json", "{nope", 400),
    ("a list", "[1, 2]", 400),
    ("unknown type", json.dumps({"type": "order.exploded", "data": {}}), 400),
    ("no data", json.dumps({"type": "sales_order.created"}), 400),
    (
        "missing field",
        event(
            "sales_order.created",
            caseId="1",
            patientId="P",
            orderType="primary",
            createdAt="2026-11-20T10:00:00Z",
        ),
        400,
    ),
    (
        "wrong order type",
        event(
            "sales_order.created",
            caseId="1",
            salesOrderNumber="S",
            patientId="P",
            orderType="tertiary",
            createdAt="2026-11-20T10:00:00Z",
        ),
        400,
    ),
    ("bad date", event("case.status_changed", caseId="1", status="x", changedAt="yesterday"), 400),
    (
        "mistyped version",
        event(
            "treatment_plan.submitted",
            caseId="1",
            planId="P",
            version="two",
            createdAt="2026-11-20T10:00:00Z",
        ),
        400,
    ),
    (
        "object as caseId",
        event("case.status_changed", caseId={"x": 1}, status="x", changedAt="2026-11-20T10:00:00Z"),
        400,
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_4xx_with_a_reason_and_nothing_written(
    client: Client, make_case: Any, label: str, body: str, status: int
) -> None:
    make_case()
    response = send(client, body)
    assert response.status_code == status
    assert response.json()["error"]
    assert CallbackEvent.objects.count() == 0
    assert AlignOrder.objects.count() == 0


@pytest.mark.django_db
def test_unknown_case_is_stored_unmatched_and_answered_202(client: Client) -> None:
    response = send(
        client,
        event("case.status_changed", caseId="999999", status="x", changedAt="2026-11-20T10:00:00Z"),
    )
    assert response.status_code == 202
    assert response.json()["unmatched"] is True
    assert CallbackEvent.objects.get().state == CallbackEvent.UNMATCHED


@pytest.mark.django_db
def test_non_utf8_body_is_refused_not_a_500(client: Client) -> None:
    body = b'{"type": "\xff\xfe"}'
    headers = signed_headers("placeholder")
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = client.generic("POST", URL, body, content_type="application/json", **extra)
    assert 400 <= response.status_code < 500


@pytest.mark.django_db
def test_body_over_the_cap_is_413_before_parsing(client: Client, settings: Any) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "CALLBACK_MAX_BYTES": 1024}
    body = json.dumps({"type": "case.status_changed", "pad": "x" * 2000})
    response = send(client, body)
    assert response.status_code == 413
    assert CallbackEvent.objects.count() == 0


@pytest.mark.django_db
def test_get_is_405(client: Client) -> None:
    assert client.get(URL).status_code == 405


@pytest.mark.django_db
def test_stored_headers_never_hold_the_signature(client: Client, make_case: Any) -> None:
    case = make_case()
    send(client, sales_order(case, "SO-1", "2026-11-20T12:00:00Z"))
    stored = CallbackEvent.objects.get()
    assert "webhook-signature" not in stored.headers
    assert not any("authorization" in k for k in stored.headers)
    assert stored.headers["webhook-id"] == stored.webhook_id


@pytest.mark.django_db
def test_processing_failure_keeps_the_event_and_reprocess_recovers(
    client: Client, make_case: Any, settings: Any
) -> None:
    case = make_case()
    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "tests.adapters.BrokenPortalAdapter",
    }
    body = event(
        "treatment_plan.submitted",
        caseId=str(case.pk),
        planId="PL-1",
        version=1,
        createdAt="2026-11-20T10:00:00Z",
    )
    response = send(client, body, webhook_id="msg_broken")
    assert response.status_code == 500
    stored = CallbackEvent.objects.get(webhook_id="msg_broken")
    assert stored.state == CallbackEvent.FAILED
    assert stored.error.startswith("RuntimeError")
    assert "Secret" not in stored.error  # the host's message is not kept
    assert not AlignCase.objects.filter(case=case, treatment_plan_id="PL-1").exists()

    settings.ALIGN_INTEGRATION = {
        **settings.ALIGN_INTEGRATION,
        "CASE_ADAPTER": "align_integration.adapters.CaseAdapter",
    }
    assert reprocess([stored]) == (1, 0, 0)
    stored.refresh_from_db()
    assert stored.state == CallbackEvent.PROCESSED
    assert AlignCase.objects.get(case=case).treatment_plan_id == "PL-1"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries_store_one_row_and_one_signal(
    make_case: Any, postgres: None
) -> None:
    case = make_case()
    seen: list[Any] = []
    signals.sales_order_received.connect(
        lambda **kw: seen.append(1), weak=False, dispatch_uid=TEST_RECEIVER
    )
    body = sales_order(case, "SO-C", "2026-11-20T12:00:00Z")
    headers = signed_headers(body, webhook_id="msg_concurrent")
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        try:
            barrier.wait()
            statuses.append(post_signed(Client(), URL, body, headers).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        signals.sales_order_received.disconnect(dispatch_uid=TEST_RECEIVER)
    assert statuses == [200] * 6
    assert CallbackEvent.objects.count() == 1
    assert AlignOrder.objects.count() == 1
    assert len(seen) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_different_sales_orders_all_land(make_case: Any, postgres: None) -> None:
    case = make_case()
    bodies = [sales_order(case, f"SO-{i}", f"2026-11-20T1{i}:00:00Z") for i in range(6)]
    barrier = threading.Barrier(len(bodies))

    def deliver(body: str) -> None:
        try:
            barrier.wait()
            post_signed(Client(), URL, body, signed_headers(body))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AlignOrder.objects.filter(case=case).count() == 6
    assert align_sales_order_number(case) == "SO-5"


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["\\ud83c", "a\\u0000b"])
def test_text_that_no_database_can_store_is_refused(
    client: Client, make_case: Any, value: str
) -> None:
    case = make_case()
    data = f'"caseId": "{case.pk}", "status": "{value}", "changedAt": "2026-11-20T10:00:00Z"'
    body = '{"type": "case.status_changed", "data": {' + data + "}}"
    response = send(client, body)
    assert response.status_code == 400
    assert CallbackEvent.objects.count() == 0


@pytest.mark.django_db
def test_deferred_processing_stores_answers_and_applies_later(
    client: Client, make_case: Any, settings: Any
) -> None:
    from align_integration.worker import reprocess_due_callbacks

    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "CALLBACK_PROCESSING": "deferred"}
    case = make_case()
    body = sales_order(case, "SO-D", "2026-11-20T12:00:00Z")
    first = send(client, body, webhook_id="msg_deferred")
    again = send(client, body, webhook_id="msg_deferred")
    assert first.status_code == again.status_code == 200
    assert first.json()["queued"] is True
    assert again.json()["duplicate"] is True
    assert CallbackEvent.objects.get().state == CallbackEvent.RECEIVED
    assert not AlignOrder.objects.exists()
    assert send(client, "{nope").status_code == 400  # still validated before storing

    assert reprocess_due_callbacks() == (1, 0, 0)
    assert align_sales_order_number(case) == "SO-D"
    assert CallbackEvent.objects.get().state == CallbackEvent.PROCESSED
    assert reprocess_due_callbacks() == (0, 0, 0)
