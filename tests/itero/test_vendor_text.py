"""iTero's free text is never kept either: a refused order look-up, a refused return and a
refused refresh keep the app's summary (status, code), whatever iTero wrote."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from align_integration.client.errors import AlignRequestRejected
from align_integration.models import CaseEvent, IteroConnection, IteroNotification, IteroScan
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.connection import forget_token
from align_integration.workflows.itero.returns import return_scan_to_doctor
from tests import canary
from tests.itero.helpers import connection_of, notify, pair_through_pages

pytestmark = pytest.mark.django_db

CHART = "CHART-4242"


@pytest.fixture
def paired(itero_sandbox: Any, staff_client: Client) -> IteroConnection:
    return pair_through_pages(staff_client)


def test_a_refused_order_look_up_keeps_no_itero_text(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    itero_sandbox.inject_fault("order", status=422, body=canary.ECHO)
    run_due_itero_work()
    notification = IteroNotification.objects.get()
    assert notification.state == IteroNotification.FAILED
    assert notification.outcome == (
        "order look-up: iTero answered 422 (validation_failed, 4 errors: dateOfBirth, mrn)"
    )


def test_a_refused_return_keeps_no_itero_text(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    itero_sandbox.inject_fault("return_scan", status=422, body=canary.ECHO)
    with pytest.raises(AlignRequestRejected):
        return_scan_to_doctor(scan, "blurred")
    event = CaseEvent.objects.get(case=scan_case, action="itero_return_scan", outcome="failed")
    assert "iTero answered 422 (validation_failed, 4 errors" in event.message
    assert canary.leaks(event.message) == []


def test_a_refused_refresh_keeps_only_a_standard_oauth_code(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    forget_token()
    itero_sandbox.inject_fault(
        "itero_token", status=401, body={"error": "Testy McTestface 05/02/1991"}
    )
    run_due_itero_work()
    connection = connection_of()
    assert connection.state == IteroConnection.NEEDS_REPAIRING
    assert connection.last_error == "refresh refused (other)"
