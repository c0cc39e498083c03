"""Callbacks whose case is not known yet, and the one-statement store under concurrency.

An event whose signature verifies but whose ``caseId`` no case answers to is stored as
``unmatched`` and answered 202; ``align_worker`` and the admin resolve it again and apply
it once, when the case appears.  Storing an event and telling a redelivery apart is one
statement, also when many deliveries of one event arrive at the same moment.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from align_integration import signals
from align_integration.cases import align_sales_order_number
from align_integration.models import AlignCase, AlignOrder, CallbackEvent
from align_integration.workflows.callbacks.events import store_for_later
from align_integration.workflows.callbacks.parsing import parse_event
from align_integration.workflows.callbacks.storage import insert_unless_exists
from tests.webhook_cases import post_signed, signed_headers

URL = "/align/callbacks/"
RECEIVER = "tests.test_callbacks_unmatched"


def sales_order(case_id: str, number: str) -> str:
    data = {
        "caseId": case_id,
        "salesOrderNumber": number,
        "patientId": f"P-{number}",
        "orderType": "primary",
        "createdAt": "2026-11-20T12:00:00Z",
    }
    return json.dumps({"type": "sales_order.created", "data": data})


def send(client: Client, body: str, webhook_id: str | None = None) -> Any:
    return post_signed(client, URL, body, signed_headers(body, webhook_id=webhook_id))


def worker_once() -> str:
    out = io.StringIO()
    call_command("align_worker", "--once", "--no-itero", stdout=out)
    return out.getvalue()


def doctor_backlog() -> str:
    out = io.StringIO()
    try:
        call_command("align_doctor", stdout=out)
    except CommandError:
        pass  # other checks (token, service) fail without a service: only backlog matters
    return next(line for line in out.getvalue().splitlines() if "backlog" in line)


@pytest.mark.django_db
def test_unmatched_callback_is_kept_and_applied_once_when_the_case_appears(
    client: Client, make_case: Any, django_capture_on_commit_callbacks: Any
) -> None:
    case = make_case()
    align_case_id = "OLD-TOOL-77"  # sent by the old tool, imported later
    body = sales_order(align_case_id, "SO-77")
    first = send(client, body, webhook_id="msg_early")
    again = send(client, body, webhook_id="msg_early")  # Align redelivers meanwhile
    assert first.status_code == 202 and first.json()["unmatched"] is True
    assert again.status_code == 200 and again.json()["duplicate"] is True
    event = CallbackEvent.objects.get()
    assert event.state == CallbackEvent.UNMATCHED
    assert not AlignOrder.objects.exists()
    assert "1 callbacks unmatched" in doctor_backlog()
    assert "still unmatched: 1" in worker_once()  # tried again: still no such case

    AlignCase.objects.create(case=case, align_case_id=align_case_id)  # the import runs
    seen: list[Any] = []
    signals.sales_order_received.connect(
        lambda **kw: seen.append(kw["align_order"]), weak=False, dispatch_uid=RECEIVER
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            out = worker_once()
            assert "still unmatched: 0" in worker_once()  # a second pass: nothing to do
    finally:
        signals.sales_order_received.disconnect(dispatch_uid=RECEIVER)
    assert "callbacks processed: 1" in out
    event.refresh_from_db()
    assert event.state == CallbackEvent.PROCESSED
    assert align_sales_order_number(case) == "SO-77"
    assert AlignOrder.objects.count() == 1 and len(seen) == 1
    assert "0 callbacks unmatched" in doctor_backlog()


@pytest.mark.django_db
def test_deferred_event_for_an_unknown_case_becomes_unmatched(
    client: Client, settings: Any
) -> None:
    settings.ALIGN_INTEGRATION = {**settings.ALIGN_INTEGRATION, "CALLBACK_PROCESSING": "deferred"}
    assert send(client, sales_order("NOBODY", "SO-1")).status_code == 200  # stored, queued
    assert "still unmatched: 1" in worker_once()
    assert CallbackEvent.objects.get().state == CallbackEvent.UNMATCHED


@pytest.mark.django_db
def test_unmatched_events_are_listed_and_resolved_from_the_admin(
    client: Client, make_case: Any, admin_user: Any
) -> None:
    case = make_case()
    send(client, sales_order("LEGACY-1", "SO-1"))
    send(client, sales_order(str(case.pk), "SO-2"))
    client.force_login(admin_user)
    changelist = "/admin/align_integration/callbackevent/"
    page = client.get(changelist, {"state__exact": CallbackEvent.UNMATCHED})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert b"Unmatched (case not known yet)" in page.content  # the state filter

    unmatched = CallbackEvent.objects.get(state=CallbackEvent.UNMATCHED)
    data = {"action": "reprocess", "_selected_action": [unmatched.pk]}
    response = client.post(changelist, data, follow=True)
    assert "1 still unmatched" in response.content.decode()
    AlignCase.objects.create(case=case, align_case_id="LEGACY-1")
    response = client.post(changelist, data, follow=True)
    assert "1 processed, 0 failed, 0 still unmatched" in response.content.decode()
    assert sorted(AlignOrder.objects.values_list("sales_order_number", flat=True)) == [
        "SO-1",
        "SO-2",
    ]


# -- one statement under concurrency (PostgreSQL) ----------------------------------------------
def together(count: int, work: Any) -> list[Any]:
    """Run ``work()`` in ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_one_statement_store_lets_one_of_many_concurrent_duplicates_win(postgres: None) -> None:
    def store() -> bool:
        event = CallbackEvent(webhook_id="msg_race", event_type="bare", body="{}")
        return insert_unless_exists(event, ["webhook_id"])

    assert sorted(together(8, store)) == [False] * 7 + [True]
    assert CallbackEvent.objects.filter(webhook_id="msg_race").count() == 1


@pytest.mark.django_db(transaction=True)
def test_deferred_store_under_concurrent_duplicates_keeps_one_row(
    make_case: Any, postgres: None
) -> None:
    case = make_case()
    body = sales_order(str(case.pk), "SO-R")
    parsed = parse_event(json.loads(body))
    stored = together(8, lambda: store_for_later("msg_deferred_race", parsed, body, {}))
    assert len([event for event in stored if event is not None]) == 1
    assert CallbackEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_unmatched_event_store_one_row(postgres: None) -> None:
    body = sales_order("NOT-YET", "SO-U")
    headers = signed_headers(body, webhook_id="msg_unmatched_race")
    statuses = together(6, lambda: post_signed(Client(), URL, body, headers).status_code)
    assert sorted(statuses) == [200] * 5 + [202]
    assert CallbackEvent.objects.get().state == CallbackEvent.UNMATCHED
