"""The data migrations of the security release, run on rows as 0.1 left them: pending
notifications for the same Rx id are merged before the one-pending constraint (0007-0008),
and archive member names in ``source_ref`` are replaced by their hash (0009)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.migrations import migrate_forward, models_as_of

APP = "align_integration"


@pytest.fixture
def old_apps(transactional_db: Any) -> Iterator[Any]:
    with models_as_of("0006_security_permissions") as apps:
        yield apps


def test_pending_duplicates_are_merged_then_constrained(old_apps: Any) -> None:
    notification = old_apps.get_model(APP, "IteroNotification")
    for _ in range(3):
        notification.objects.create(rx_id="rx-1", account_number="LAB-1")
    notification.objects.create(rx_id="rx-1", account_number="LAB-1", state="processed")
    notification.objects.create(rx_id="rx-2", account_number="LAB-1")
    first = notification.objects.filter(rx_id="rx-1").order_by("received_at", "pk").first()
    migrate_forward()
    from align_integration.models import IteroNotification

    pending = IteroNotification.objects.filter(state="received")
    assert sorted(pending.values_list("rx_id", flat=True)) == ["rx-1", "rx-2"]
    assert pending.get(rx_id="rx-1").pk == first.pk  # the oldest stands for the others
    assert IteroNotification.objects.filter(state="ignored").count() == 2


def test_member_names_in_source_ref_become_hashes(old_apps: Any, make_case: Any) -> None:
    case = make_case(stl_files=0)
    scan = old_apps.get_model(APP, "IteroScan")
    asset = old_apps.get_model(APP, "CaseAsset")
    revision = "Ready|2026-01-01T10:00:00Z"  # colons in the revision, as 0.1 made them
    scan.objects.create(rx_id="rx-9", revision=revision, case_id=case.pk)
    named = "Testy_McTestface_1991-05-02/upper.stl"
    long_hash = f"sha256-{hashlib.sha256(b'x').hexdigest()[:40]}"  # 0.1's form for long names
    for ref, name in [(named, "a.stl"), (long_hash, "b.stl"), ("Rx.html", "c.html")]:
        asset.objects.create(
            case_id=case.pk,
            kind="STL",
            source="itero",
            source_ref=f"rx-9:{revision}:{ref}",
            file=f"align_integration/assets/{name}",
            content_type="text/html" if name.endswith(".html") else "model/stl",
        )
    migrate_forward()
    from align_integration.models import CaseAsset
    from align_integration.workflows.itero.extraction import member_ref

    refs = set(CaseAsset.objects.values_list("source_ref", flat=True))
    assert refs == {
        f"rx-9:{revision}:{member_ref(named)}",
        f"rx-9:{revision}:{long_hash}",
        f"rx-9:{revision}:{member_ref('Rx.html')}",
    }
    assert not any("Testy" in ref for ref in refs)
    html = CaseAsset.objects.get(file__endswith=".html")
    assert html.content_type == "application/octet-stream"
    assert CaseAsset.objects.get(file__endswith="a.stl").content_type == "model/stl"
