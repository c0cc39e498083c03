"""A faithful iTero connector (issue 12, item 5), against the sandbox: a newer revision of an
Rx supersedes the older one's files, the restorative thumbnails and screen captures are
fetched when the order lists them and kept as their own kinds, the XML version is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration.adapters import get_adapter
from align_integration.cases import can_send_to_align
from align_integration.client.errors import AlignNotFound
from align_integration.client.itero import IteroClient
from align_integration.models import CaseAsset, CaseEvent, IteroScan
from align_integration.workflows.itero import run_due_itero_work
from tests.itero.helpers import notify, pair_through_pages

CHART = "CHART-4242"


@pytest.fixture
def paired(itero_sandbox: Any, staff_client: Client) -> Any:
    return pair_through_pages(staff_client)


def stl_rows(case: Any) -> Any:
    return CaseAsset.objects.filter(case=case, kind=CaseAsset.STL, source="itero")


def downloads_by_type(sandbox: Any) -> list[str]:
    return [call.params["asset_type"] for call in sandbox.calls("download")]


def scan_arrives(sandbox: Any, client: Client, rx_id: str) -> None:
    notify(client, rx_id)
    run_due_itero_work()


def test_a_newer_revision_supersedes_the_older_models(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    lab = itero_sandbox.itero
    rx_id = lab.create_scan(chart_number=CHART, notify=False)
    scan_arrives(itero_sandbox, staff_client, rx_id)
    first = list(stl_rows(scan_case))
    assert len(first) == 2 and can_send_to_align(scan_case).ok

    lab.update_scan(rx_id, notify=False, reason="modeling")
    scan_arrives(itero_sandbox, staff_client, rx_id)

    old, new = IteroScan.objects.filter(rx_id=rx_id).order_by("pk")
    assert (old.state, new.state) == (IteroScan.SUPERSEDED, IteroScan.DOWNLOADED)
    # Nothing deleted: the first revision's rows and files stay, marked removed.
    assert stl_rows(scan_case).count() == 4
    for asset in first:
        asset.refresh_from_db()
        assert asset.date_removed is not None and asset.file.storage.exists(asset.file.name)
    current = stl_rows(scan_case).filter(date_removed__isnull=True)
    refs = list(current.values_list("source_ref", flat=True))
    assert len(refs) == 2 and all(ref.startswith(f"{rx_id}:v2:") for ref in refs)
    assert len(get_adapter().stl_files(scan_case)) == 2
    assert get_adapter().stl_file_count(scan_case) == 2
    assert can_send_to_align(scan_case).ok
    # Every file of the old revision is superseded, not only the models.
    assert not CaseAsset.objects.current().filter(source_ref__startswith=f"{rx_id}:v1:")


def test_the_stl_count_follows_the_current_revision(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    lab = itero_sandbox.itero
    rx_id = lab.create_scan(chart_number=CHART, notify=False)
    scan_arrives(itero_sandbox, staff_client, rx_id)
    lab.update_scan(rx_id, notify=False, stl_count=1)  # the rescan brought one arch only
    scan_arrives(itero_sandbox, staff_client, rx_id)
    assert get_adapter().stl_file_count(scan_case) == 1  # not 3
    assert not can_send_to_align(scan_case).ok


def test_a_revision_still_waiting_is_superseded_without_a_download(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    lab = itero_sandbox.itero
    rx_id = lab.create_scan(chart_number=CHART, not_ready_downloads=1, notify=False)
    scan_arrives(itero_sandbox, staff_client, rx_id)
    assert IteroScan.objects.get(rx_id=rx_id).state == IteroScan.PENDING  # 404: later
    lab.update_scan(rx_id, notify=False)
    scan_arrives(itero_sandbox, staff_client, rx_id)
    old, new = IteroScan.objects.filter(rx_id=rx_id).order_by("pk")
    assert old.state == IteroScan.SUPERSEDED and "superseded by revision v2" in old.last_error
    assert new.state == IteroScan.DOWNLOADED
    assert itero_sandbox.count("download") == 2  # the 404, then v2 once: v1 never again
    assert stl_rows(scan_case).count() == 2 and get_adapter().stl_file_count(scan_case) == 2


def test_restorative_thumbnails_and_screen_captures_are_kept_as_their_kinds(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(
        chart_number=CHART, case_type="Restorative", screenshots=2, notify=False
    )
    scan_arrives(itero_sandbox, staff_client, rx_id)
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.DOWNLOADED
    assert downloads_by_type(itero_sandbox) == ["ide", "thumbnails", "screenshots"]
    assert scan.fetched_assets == ["ide", "thumbnails", "screenshots"]
    current = CaseAsset.objects.current().filter(case=scan_case)
    assert current.filter(kind=CaseAsset.THUMBNAIL).count() == 6
    assert current.filter(kind=CaseAsset.SCREEN_CAPTURE).count() == 2
    for asset in current.filter(kind__in=[CaseAsset.THUMBNAIL, CaseAsset.SCREEN_CAPTURE]):
        assert asset.content_type == "image/jpeg" and asset.file.name.endswith(".jpg")
        assert asset.source_ref.startswith((f"{rx_id}:v1:thumbnails:", f"{rx_id}:v1:screenshots:"))
    event = CaseEvent.objects.get(case=scan_case, action="itero_scan_download")
    assert "6 THUMBNAIL" in event.message and "2 SCREENCAPTURE" in event.message


def test_orthodontic_thumbnails_come_in_the_ide_archive_and_no_captures_are_asked_for(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)  # orthodontic
    scan_arrives(itero_sandbox, staff_client, rx_id)
    assert downloads_by_type(itero_sandbox) == ["ide"]
    assert CaseAsset.objects.filter(case=scan_case, kind=CaseAsset.THUMBNAIL).count() == 6
    assert not CaseAsset.objects.filter(case=scan_case, kind=CaseAsset.SCREEN_CAPTURE)


def test_a_failed_picture_download_resumes_without_the_models_again(
    paired: Any,
    itero_sandbox: Any,
    staff_client: Client,
    scan_case: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_download = IteroClient.download
    refused: list[str] = []

    def thumbnails_not_ready_once(self: IteroClient, rx_id: str, out: Any, **kwargs: Any) -> int:
        if kwargs.get("asset_type") == "thumbnails" and not refused:
            refused.append(rx_id)
            raise AlignNotFound("not ready", status_code=404)
        return real_download(self, rx_id, out, **kwargs)

    monkeypatch.setattr(IteroClient, "download", thumbnails_not_ready_once)
    rx_id = itero_sandbox.itero.create_scan(
        chart_number=CHART, case_type="Restorative", notify=False
    )
    scan_arrives(itero_sandbox, staff_client, rx_id)
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.state == IteroScan.PENDING and scan.fetched_assets == ["ide"]
    assert get_adapter().stl_file_count(scan_case) == 2  # the models are there already
    IteroScan.objects.filter(pk=scan.pk).update(next_attempt_at=scan.created_at)
    run_due_itero_work()
    scan.refresh_from_db()
    assert scan.state == IteroScan.DOWNLOADED
    assert downloads_by_type(itero_sandbox) == ["ide", "thumbnails"]
    assert CaseAsset.objects.filter(case=scan_case, kind=CaseAsset.THUMBNAIL).count() == 6


def test_the_xml_version_is_recorded_and_shown(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any, admin_user: Any
) -> None:
    lab = itero_sandbox.itero
    rx_id = lab.create_scan(chart_number=CHART, xml_version="v44", notify=False)
    scan_arrives(itero_sandbox, staff_client, rx_id)
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert scan.xml_version == "v44" and scan.order_summary["xmlVersion"] == "v44"
    event = CaseEvent.objects.get(case=scan_case, action="itero_scan_download")
    assert "scan metadata XML v44" in event.message
    lab.update_scan(rx_id, notify=False, xml_version="v50")
    scan_arrives(itero_sandbox, staff_client, rx_id)
    assert IteroScan.objects.get(rx_id=rx_id, revision="v2").xml_version == "v50"
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(reverse("admin:align_integration_iteroscan_changelist")).content.decode()
    assert "v44" in page and "v50" in page


def test_the_xml_version_is_read_from_the_archive_when_the_order_does_not_say(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    lab = itero_sandbox.itero
    rx_id = lab.create_scan(chart_number=CHART, notify=False)
    with lab.lock:
        del lab.orders[rx_id]["xmlVersion"]  # the archive still holds scan_v50.xml
    scan_arrives(itero_sandbox, staff_client, rx_id)
    scan = IteroScan.objects.get(rx_id=rx_id)
    assert "xmlVersion" not in scan.order_summary and scan.xml_version == "v50"
