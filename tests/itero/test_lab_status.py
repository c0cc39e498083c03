"""The lab statuses an iTero order reports (Lab Review, iTero Modeling, …) reach the case's
timeline when they change, against the sandbox (a status change alone notifies nobody: the
worker's status watch looks the orders up)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from align_integration.models import CaseEvent, IteroScan
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.lab_status import OTHER, lab_status_of
from align_integration.workflows.itero.scans import register_order
from align_integration.workflows.itero.status_watch import watch_lab_statuses
from tests.itero.helpers import ACCOUNT, notify, pair_through_pages

CHART = "CHART-4242"


@pytest.fixture
def downloaded(itero_sandbox: Any, staff_client: Client, scan_case: Any) -> str:
    pair_through_pages(staff_client)
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    assert IteroScan.objects.get(rx_id=rx_id).state == IteroScan.DOWNLOADED
    return rx_id


def a_window_later() -> None:
    """As if POLL_INTERVAL had passed since each order was last looked at."""
    IteroScan.objects.update(lab_status_checked_at=timezone.now() - dt.timedelta(hours=1))


def status_messages(case: Any) -> list[str]:
    events = CaseEvent.objects.filter(case=case, action="itero_lab_status").order_by("pk")
    return [event.message for event in events]


def test_lab_status_changes_appear_on_the_timeline(
    downloaded: str, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    lab, rx_id = itero_sandbox.itero, downloaded
    assert status_messages(scan_case) == []  # the arrival itself says "Ready For Download"
    received = CaseEvent.objects.get(case=scan_case, action="itero_scan")
    assert "lab status Ready For Download" in received.message

    for status in ("Lab Review", "iTero Modeling"):
        lab.set_status(rx_id, status)
        a_window_later()
        assert watch_lab_statuses(force=True) == 1
    a_window_later()
    watch_lab_statuses(force=True)  # unchanged: nothing new on the timeline
    assert status_messages(scan_case) == [
        f"iTero lab status of Rx {rx_id} (order {lab.orders[rx_id]['orderId']}): "
        "Lab Review (was Ready For Download).",
        f"iTero lab status of Rx {rx_id} (order {lab.orders[rx_id]['orderId']}): "
        "iTero Modeling (was Lab Review).",
    ]

    lab.update_scan(rx_id, notify=False, reason="modeling")  # back from modeling
    notify(staff_client, rx_id)
    run_due_itero_work()
    assert status_messages(scan_case)[-1].endswith("Ready For Download (was iTero Modeling).")
    a_window_later()
    watch_lab_statuses(force=True)  # our own download shows as Downloaded
    for status in ("iTero Milling", "Ready To Ship"):
        lab.set_status(rx_id, status)
        a_window_later()
        watch_lab_statuses(force=True)
    messages = status_messages(scan_case)
    assert [m.rsplit(": ", 1)[1] for m in messages[-3:]] == [
        "Downloaded (was Ready For Download).",
        "iTero Milling (was Downloaded).",
        "Ready To Ship (was iTero Milling).",
    ]
    newest = IteroScan.objects.get(rx_id=rx_id, revision="v2")
    assert newest.lab_status == "Ready To Ship"
    # Ready To Ship is final: the order is not looked up any more.
    looked_up = itero_sandbox.count("order")
    a_window_later()
    assert watch_lab_statuses(force=True) == 0
    assert itero_sandbox.count("order") == looked_up
    panel = staff_client.get(
        reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(scan_case.uuid)})
    ).content.decode()
    assert "Ready To Ship (was iTero Milling)" in panel


def test_the_watch_keeps_to_its_window(downloaded: str, itero_sandbox: Any, settings: Any) -> None:
    itero_sandbox.itero.set_status(downloaded, "Lab Review")
    looked_up = itero_sandbox.count("order")
    assert watch_lab_statuses(force=True) == 0  # seen within the poll interval: not yet
    a_window_later()
    run_due_itero_work()  # the account's window was claimed by the first pass
    assert itero_sandbox.count("order") == looked_up
    caches["default"].clear()  # the window passes (and the cached tokens with it)
    run_due_itero_work()
    assert itero_sandbox.count("order") == looked_up + 1
    assert IteroScan.objects.get(rx_id=downloaded).lab_status == "Lab Review"
    a_window_later()
    run_due_itero_work()  # same window: no second look-up
    assert itero_sandbox.count("order") == looked_up + 1
    config = settings.ALIGN_INTEGRATION
    settings.ALIGN_INTEGRATION = {
        **config,
        "ITERO": {**config["ITERO"], "LAB_STATUS_WATCH_DAYS": 0},
    }
    itero_sandbox.itero.set_status(downloaded, "iTero Milling")
    assert watch_lab_statuses(force=True) == 0  # switched off


def test_without_a_version_a_status_move_is_no_new_revision(
    paired_connection: Any, scan_case: Any
) -> None:
    """The protocol page names no ``version``: then only Ready For Download marks new files."""

    def order(status: str, received_at: str = "2026-01-01T10:00:00Z") -> dict[str, Any]:
        return {
            "rxId": "rx-nv",
            "orderId": "17544999",
            "accountNumber": ACCOUNT,
            "status": status,
            "receivedAt": received_at,
            "patient": {"chartNumber": CHART},
        }

    first, created = register_order(
        order("Ready For Download"), source="poll", connection=paired_connection
    )
    assert created and first is not None
    for status in ("Downloaded", "Lab Review", "iTero Modeling"):
        scan, created = register_order(order(status), source="status", connection=paired_connection)
        assert not created and scan is not None and scan.pk == first.pk
    first.refresh_from_db()
    assert first.lab_status == "iTero Modeling" and len(status_messages(scan_case)) == 3
    rescan, created = register_order(
        order("Ready For Download", "2026-01-02T09:00:00Z"),
        source="poll",
        connection=paired_connection,
    )
    assert created and rescan is not None and rescan.pk != first.pk


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Lab Review", "Lab Review"),
        ("READY_FOR_DOWNLOAD", "Ready For Download"),
        ("itero modeling", "iTero Modeling"),
        ("Patient Jane Doe called", OTHER),  # never the vendor's own text
        ("", ""),
        (17, ""),
    ],
)
def test_only_known_statuses_are_kept(raw: Any, kept: str) -> None:
    assert lab_status_of({"status": raw}) == kept
