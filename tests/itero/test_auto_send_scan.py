"""A scan that lands on a case tells the app by itself: with ``auto-send-to-align`` on,
the case that its scan made eligible is sent to Align with no click."""

from __future__ import annotations

from typing import Any

from django.test import Client

from align_integration.models import AlignCase, RemoteOperation
from align_integration.worker import run_due_operations
from align_integration.workflows.itero import run_due_itero_work
from tests.itero.helpers import notify, pair_through_pages

CHART = "CHART-4242"


def test_a_scan_makes_its_case_eligible_and_the_worker_sends_it(
    itero_sandbox: Any, staff_client: Client, scan_case: Any, flags: Any
) -> None:
    flags("auto-send-to-align")
    pair_through_pages(staff_client)
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    assert notify(staff_client, rx_id).status_code == 202
    run_due_itero_work()
    [operation] = RemoteOperation.objects.filter(case=scan_case, kind=RemoteOperation.AUTO_SEND)
    assert operation.state == RemoteOperation.RETRY_SCHEDULED
    assert itero_sandbox.count("create_patient") == 0

    run_due_operations()
    assert AlignCase.objects.get(case=scan_case).order_sent
    assert itero_sandbox.count("create_patient") == itero_sandbox.count("create_order") == 1
