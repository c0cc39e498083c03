"""The operations admin: a case's timeline, "Retry now" and "Reprocess" with permissions and
log entries, and list pages whose query count does not grow with the rows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from align_integration.models import (
    AlignCase,
    AlignOrder,
    CallbackEvent,
    CaseAsset,
    CaseEvent,
    RemoteOperation,
)
from align_integration.workflows.timeline import record

pytestmark = pytest.mark.django_db


def changelist(model: str) -> str:
    return reverse(f"admin:align_integration_{model}_changelist")


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    """Staff who may view operations and callbacks, and act on them."""
    user = django_user_model.objects.create_user(username="ops", password="pw", is_staff=True)
    for codename in (
        "view_remoteoperation",
        "change_remoteoperation",
        "view_callbackevent",
        "change_callbackevent",
        "view_caseevent",
    ):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user(username="viewer", password="pw", is_staff=True)
    for codename in ("view_remoteoperation", "view_callbackevent"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def failed_operation(case: Any) -> RemoteOperation:
    return RemoteOperation.objects.create(
        case=case,
        kind=RemoteOperation.CLINCHECK_REVISE,
        dedupe_key=f"clincheck_revise:{case.pk}:none:x",
        payload={"comments": "Close the gap."},
        state=RemoteOperation.FAILED,
        attempts=8,
        last_status_code=503,
        last_errors=["injected fault: HTTP 503"],
    )


def test_timeline_of_one_case(admin_client: Client, make_case: Any) -> None:
    case, other = make_case(), make_case()
    record(case, "initiate_order", CaseEvent.STARTED, "Sending the case to Align.")
    record(other, "initiate_order", CaseEvent.FAILED, "Other case's entry.")
    response = admin_client.get(changelist("caseevent") + f"?case={case.pk}")
    assert response.status_code == 200
    text = response.content.decode()
    assert f"Align timeline of case {case.pk}" in text
    assert "Sending the case to Align." in text and "Other case" not in text
    operation = failed_operation(case)
    listing = admin_client.get(changelist("remoteoperation") + "?state__exact=failed")
    assert f"?case={case.pk}" in listing.content.decode()
    assert "injected fault: HTTP 503" in listing.content.decode()
    assert "Close the gap." not in listing.content.decode()  # the provider's text stays out
    assert operation.pk


def test_retry_now_needs_permission_and_is_logged(
    operator: Any, viewer: Any, align_sandbox: Any, sent_case: Any
) -> None:
    case = sent_case()
    operation = failed_operation(case)
    data = {"action": "retry_now", "_selected_action": [operation.pk]}

    response = logged_in(viewer).post(changelist("remoteoperation"), data)
    assert align_sandbox.count("clincheck_revise") == 0
    assert not LogEntry.objects.exists()
    page = logged_in(viewer).get(changelist("remoteoperation")).content.decode()
    assert "retry_now" not in page
    assert response.status_code in (200, 302)

    response = logged_in(operator).post(changelist("remoteoperation"), data, follow=True)
    assert response.status_code == 200
    assert "1 of 1 operations succeeded." in response.content.decode()
    operation.refresh_from_db()
    assert operation.state == RemoteOperation.SUCCEEDED
    [entry] = LogEntry.objects.all()
    assert (entry.user, entry.object_id) == (operator, str(operation.pk))
    assert entry.change_message == "Retried from the admin."
    assert align_sandbox.count("clincheck_revise") == 1


def test_reprocess_needs_permission_and_is_logged(
    operator: Any, viewer: Any, make_case: Any
) -> None:
    case = make_case()
    body = {
        "type": "case.status_changed",
        "data": {"caseId": str(case.pk), "status": "shipped", "changedAt": "2030-01-01T00:00:00Z"},
    }
    event = CallbackEvent.objects.create(
        webhook_id="msg_1",
        event_type="case.status_changed",
        case_reference=str(case.pk),
        body=json.dumps(body),
        state=CallbackEvent.FAILED,
        attempts=1,
        error="RuntimeError: ",
    )
    data = {"action": "reprocess", "_selected_action": [event.pk]}
    logged_in(viewer).post(changelist("callbackevent"), data)
    event.refresh_from_db()
    assert event.state == CallbackEvent.FAILED and not LogEntry.objects.exists()

    response = logged_in(operator).post(changelist("callbackevent"), data, follow=True)
    assert "1 processed, 0 failed, 0 still unmatched" in response.content.decode()
    event.refresh_from_db()
    assert event.state == CallbackEvent.PROCESSED
    assert AlignCase.objects.get(case=case).status == "shipped"
    [entry] = LogEntry.objects.all()
    assert entry.object_id == str(event.pk) and "Reprocessed" in entry.change_message


def _fill(model: str, count: int, cases: list[Any], start: int = 0) -> None:
    for index in range(start, start + count):
        case = cases[index % len(cases)]
        if model == "caseevent":
            record(case, "initiate_order", CaseEvent.INFO, f"entry {index}")
        elif model == "remoteoperation":
            RemoteOperation.objects.create(
                case=case, kind=RemoteOperation.CLINCHECK_ACCEPT, dedupe_key=f"k{index}"
            )
        elif model == "callbackevent":
            CallbackEvent.objects.create(
                webhook_id=f"m{index}", event_type="case.status_changed", body="{}"
            )
        elif model == "alignorder":
            AlignOrder.objects.create(
                case=case, order_type="primary", sales_order_number=f"SO{index}", patient_id="P"
            )
        elif model == "caseasset":
            CaseAsset.objects.create(case=case, kind=CaseAsset.STL, file=f"f{index}.stl")
        elif model == "aligncase":
            AlignCase.objects.get_or_create(case=case)


@pytest.mark.parametrize(
    "model",
    ["caseevent", "remoteoperation", "callbackevent", "alignorder", "caseasset", "aligncase"],
)
def test_list_pages_use_a_constant_number_of_queries(
    admin_client: Client, make_case: Any, django_assert_max_num_queries: Any, model: str
) -> None:
    cases = [make_case(stl_files=0) for _ in range(50)]
    _fill(model, 1, cases)
    admin_client.get(changelist(model))  # warm the session and content type caches
    with django_assert_max_num_queries(50) as one_row:
        assert admin_client.get(changelist(model)).status_code == 200
    _fill(model, 49, cases, start=1)
    with django_assert_max_num_queries(len(one_row.captured_queries)):
        response = admin_client.get(changelist(model))
    assert response.status_code == 200
