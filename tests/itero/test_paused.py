"""The kill switch ``align-outbound-paused`` on the iTero paths: connect, pair and un-pair
answer 503 and call nothing; notifications are still stored, but the worker confirms and
downloads nothing until the switch is off (then it does)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from waffle.testutils import override_switch

from align_integration.models import CaseAsset, IteroNotification
from align_integration.outbound import SWITCH
from align_integration.worker import run_worker_pass
from tests.itero.helpers import ACCOUNT, notify, pair_through_pages

pytestmark = pytest.mark.django_db

paused = override_switch(SWITCH, active=True)


def calls(sandbox: Any) -> int:
    return len(sandbox.requests)


def test_itero_connect_pair_and_unpair_answer_503_and_call_nothing(
    itero_sandbox: Any, staff_client: Client
) -> None:
    pair_through_pages(staff_client)
    before = calls(itero_sandbox)
    with paused:
        connect = staff_client.get(reverse("align_integration:itero-connect"))
        pair = staff_client.post(reverse("align_integration:itero-pair"), {"account_number": "X"})
        unpair = staff_client.post(
            reverse("align_integration:itero-unpair", kwargs={"account_number": ACCOUNT})
        )
    assert [connect.status_code, pair.status_code, unpair.status_code] == [503, 503, 503]
    assert "paused" in unpair.content.decode()
    assert calls(itero_sandbox) == before


def test_itero_work_waits_while_paused(
    itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    pair_through_pages(staff_client)
    rx_id = itero_sandbox.itero.create_scan(chart_number="CHART-4242", notify=False)
    calls_before = calls(itero_sandbox)
    with paused:
        assert notify(staff_client, rx_id).status_code == 202  # inbound: still stored
        run_worker_pass()
    assert calls(itero_sandbox) == calls_before
    assert IteroNotification.objects.get().state == IteroNotification.RECEIVED

    run_worker_pass()
    assert IteroNotification.objects.get().state == IteroNotification.PROCESSED
    assert CaseAsset.objects.filter(case=scan_case, kind=CaseAsset.STL).count() == 2
