"""End-to-end flows against the sandbox: notifications and polling, downloads (404 then
ready, truncated), linking, return scan.  Pairing and the connection: test_pairing.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from align_integration.cases import can_send_to_align
from align_integration.client.errors import AlignRequestRejected
from align_integration.models import (
    CaseAsset,
    CaseEvent,
    IteroNotification,
    IteroScan,
)
from align_integration.signals import scan_received
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.returns import return_scan_to_doctor
from tests.itero.helpers import (
    connection_of,
    notify,
)

CHART = "CHART-4242"


def make_due(scan: IteroScan) -> None:
    IteroScan.objects.filter(pk=scan.pk).update(next_attempt_at=timezone.now())


def stl_assets(case: Any) -> int:
    return CaseAsset.objects.filter(case=case, kind=CaseAsset.STL, source="itero").count()


@pytest.fixture
def received(db: Any) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, case: Any, scan: Any, **kwargs: Any) -> None:
        seen.append({"case": case.pk, "scan": scan.pk})

    scan_received.connect(receiver, weak=False)
    yield seen
    scan_received.disconnect(receiver)


def test_notification_to_two_stl_assets_and_an_eligible_case(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any, received: list[Any]
) -> None:
    assert not can_send_to_align(scan_case).ok
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    for _ in range(3):  # iTero may repeat a notification: one row stands for all, acts once
        assert notify(staff_client, rx_id).status_code == 202
    assert IteroNotification.objects.count() == 1
    assert run_due_itero_work() >= 1
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.DOWNLOADED and scan.case_id == scan_case.pk
    assert stl_assets(scan_case) == 2
    assert can_send_to_align(scan_case).ok
    assert itero_sandbox.count("order") == 1 and itero_sandbox.count("download") == 1
    assert set(IteroNotification.objects.values_list("state", flat=True)) == {"processed"}
    assert received == [{"case": scan_case.pk, "scan": scan.pk}]
    kinds = set(CaseAsset.objects.filter(case=scan_case).values_list("kind", flat=True))
    assert kinds == {"STL", "RXPDF", "RXHTML", "SCANXML", "THUMBNAIL"}
    # More notifications for the same revision, and more passes: nothing new.
    notify(staff_client, rx_id)
    run_due_itero_work()
    assert itero_sandbox.count("download") == 1 and stl_assets(scan_case) == 2
    assert IteroScan.objects.count() == 1
    events = CaseEvent.objects.filter(case=scan_case, action="itero_scan_download")
    assert [event.outcome for event in events] == ["succeeded"]


def test_each_real_change_is_downloaded_once(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    itero_sandbox.itero.update_scan(rx_id, notify=False)  # e.g. back from modeling
    notify(staff_client, rx_id)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scans = IteroScan.objects.filter(rx_id=rx_id).order_by("pk")
    assert [scan.revision for scan in scans] == ["v1", "v2"]
    assert {scan.order_id for scan in scans} == {scans[0].order_id}
    assert [scan.state for scan in scans] == [IteroScan.SUPERSEDED, IteroScan.DOWNLOADED]
    assert itero_sandbox.count("download") == 2
    assert stl_assets(scan_case) == 4  # both revisions' models are kept, the first as removed
    assert CaseAsset.objects.current().filter(case=scan_case, kind="STL").count() == 2


def test_polling_finds_scans_without_notifications(
    paired: Any, itero_sandbox: Any, scan_case: Any
) -> None:
    itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    assert run_due_itero_work() >= 1
    assert itero_sandbox.count("orders") == 1
    assert stl_assets(scan_case) == 2
    run_due_itero_work()  # inside the poll window: no second Get Orders
    assert itero_sandbox.count("orders") == 1
    assert connection_of().last_poll_at is not None


def test_a_404_download_is_retried_later_then_succeeds(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, not_ready_downloads=1, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.PENDING and scan.attempts == 1
    assert scan.last_status_code == 404 and "404" in scan.last_error
    wait = (scan.next_attempt_at - timezone.now()).total_seconds()
    assert 50 < wait <= 60  # DOWNLOAD_RETRY_BASE
    run_due_itero_work()  # not due yet: nothing happens
    assert itero_sandbox.count("download") == 1
    make_due(scan)
    run_due_itero_work()
    scan.refresh_from_db()
    assert scan.state == IteroScan.DOWNLOADED and stl_assets(scan_case) == 2
    outcomes = list(
        CaseEvent.objects.filter(case=scan_case, action="itero_scan_download")
        .order_by("pk")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["retry_scheduled", "succeeded"]


def test_repeated_404s_end_failed_and_visible(
    paired: Any,
    itero_sandbox: Any,
    staff_client: Client,
    scan_case: Any,
    settings: Any,
    admin_user: Any,
) -> None:
    config = settings.ALIGN_INTEGRATION
    settings.ALIGN_INTEGRATION = {
        **config,
        "ITERO": {**config["ITERO"], "DOWNLOAD_MAX_ATTEMPTS": 3},
    }
    rx_id = itero_sandbox.itero.create_scan(
        chart_number=CHART, not_ready_downloads=10, notify=False
    )
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    delays = []
    for _ in range(2):
        delays.append((scan.next_attempt_at - timezone.now()).total_seconds())
        make_due(scan)
        run_due_itero_work()
        scan.refresh_from_db()
    assert delays[1] > delays[0]  # the delay grows
    assert scan.state == IteroScan.FAILED and scan.attempts == 3
    assert itero_sandbox.count("download") == 3
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(reverse("admin:align_integration_iteroscan_changelist")).content
    assert b"Failed" in page and b"gave up after 3 attempts" in page


def test_a_truncated_download_is_never_promoted(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any, tmp_path: Path
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    itero_sandbox.inject_fault("download", drop="partial")
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.PENDING and "incomplete" in scan.last_error
    assert CaseAsset.objects.filter(case=scan_case).count() == 0
    assert list((tmp_path / "downloads").iterdir()) == []  # the partial file is gone
    make_due(scan)
    run_due_itero_work()
    scan.refresh_from_db()
    assert scan.state == IteroScan.DOWNLOADED and stl_assets(scan_case) == 2
    assert list((tmp_path / "downloads").iterdir()) == []


def test_a_large_scan_streams_with_bounded_memory(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    import tracemalloc

    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, size=40 * 1024 * 1024, notify=False)
    notify(staff_client, rx_id)
    tracemalloc.start()
    try:
        run_due_itero_work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert IteroScan.objects.get(rx_id=rx_id).state == IteroScan.DOWNLOADED
    assert CaseAsset.objects.filter(case=scan_case, kind="STL").first().size > 10 * 1024 * 1024
    assert peak < 24 * 1024 * 1024  # a 40 MB archive, never held whole


def test_an_unmatched_scan_waits_and_is_linked_by_the_admin_action(
    paired: Any,
    itero_sandbox: Any,
    staff_client: Client,
    scan_case: Any,
    admin_user: Any,
    received: list[Any],
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number="NO-SUCH-CHART", notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.WAITING_FOR_CASE and scan.case_id is None
    assert itero_sandbox.count("download") == 0 and received == []

    admin = Client()
    admin.force_login(admin_user)
    url = reverse("admin:align_integration_iteroscan_changelist")
    form = admin.post(url, {"action": "link_to_case", "_selected_action": [scan.pk]})
    assert form.status_code == 200 and b"case_reference" in form.content
    bad = admin.post(
        url,
        {
            "action": "link_to_case",
            "_selected_action": [scan.pk],
            "apply": "1",
            "case_reference": "not-a-case",
        },
    )
    assert b"No case with that reference" in bad.content
    done = admin.post(
        url,
        {
            "action": "link_to_case",
            "_selected_action": [scan.pk],
            "apply": "1",
            "case_reference": str(scan_case.uuid),
        },
    )
    assert done.status_code == 302
    scan.refresh_from_db()
    assert scan.state == IteroScan.DOWNLOADED and scan.case_id == scan_case.pk
    assert stl_assets(scan_case) == 2 and can_send_to_align(scan_case).ok
    assert received == [{"case": scan_case.pk, "scan": scan.pk}]


def test_a_waiting_scan_is_matched_when_seen_again(
    paired: Any, itero_sandbox: Any, staff_client: Client, make_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number="LATE-CASE", notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    assert IteroScan.objects.get(rx_id=rx_id).state == IteroScan.WAITING_FOR_CASE
    case = make_case(stl_files=0, mrn="LATE-CASE")  # the case is entered afterwards
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.case_id == case.pk and scan.state == IteroScan.DOWNLOADED


def test_admin_retry_and_return_actions(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any, admin_user: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, not_ready_downloads=1, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    admin = Client()
    admin.force_login(admin_user)
    url = reverse("admin:align_integration_iteroscan_changelist")
    admin.post(url, {"action": "retry_download_now", "_selected_action": [scan.pk]})
    scan.refresh_from_db()
    assert scan.state == IteroScan.DOWNLOADED
    form = admin.post(url, {"action": "return_to_doctor", "_selected_action": [scan.pk]})
    assert b"reason" in form.content
    admin.post(
        url,
        {
            "action": "return_to_doctor",
            "_selected_action": [scan.pk],
            "apply": "1",
            "reason": "Upper arch incomplete",
        },
    )
    scan.refresh_from_db()
    assert scan.state == IteroScan.RETURNED
    assert itero_sandbox.calls("return_scan")[0].json == {"reason": "Upper arch incomplete"}
    assert itero_sandbox.itero.orders[rx_id]["status"] == "Returned"


def test_return_scan_function_failure_is_raised_and_recorded(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    run_due_itero_work()
    scan = IteroScan.objects.get(rx_id=rx_id)
    itero_sandbox.inject_fault("return_scan", status=422)
    with pytest.raises(AlignRequestRejected):
        return_scan_to_doctor(scan, "blurred")
    assert CaseEvent.objects.filter(case=scan_case, action="itero_return_scan", outcome="failed")
    with pytest.raises(ValueError):
        return_scan_to_doctor(scan, "   ")
