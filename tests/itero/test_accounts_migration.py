"""Migration 0011 on rows as the one-pairing connector left them: the existing pairing is
kept (now the row of its account), a sign-in over a pairing becomes the sign-in row and the
account waits for re-pairing, scans get their account, and older revisions' files on a case
are marked removed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from align_integration.encryption import encrypt_token
from tests.migrations import migrate_forward, models_as_of

APP = "align_integration"


@pytest.fixture
def old_apps(transactional_db: Any) -> Iterator[Any]:
    with models_as_of("0010_vendor_text") as apps:
        yield apps


def test_the_existing_pairing_is_kept(old_apps: Any, make_case: Any) -> None:
    case = make_case(stl_files=0)
    old_connection = old_apps.get_model(APP, "IteroConnection")
    scan_model = old_apps.get_model(APP, "IteroScan")
    asset_model = old_apps.get_model(APP, "CaseAsset")
    old_connection.objects.create(
        pk=1,
        account_number="LAB-7",
        state="paired",
        refresh_token_encrypted=encrypt_token("refresh-7"),
        endpoints={"orders": "https://api.itero.test/orders"},
    )
    for revision in ("v1", "v2"):
        scan_model.objects.create(
            rx_id="rx-1",
            revision=revision,
            case_id=case.pk,
            state="downloaded",
            order_summary={"status": "Ready For Download", "version": int(revision[1:])},
        )
        for arch in ("upper", "lower"):
            asset_model.objects.create(
                case_id=case.pk,
                kind="STL",
                source="itero",
                source_ref=f"rx-1:{revision}:sha256-{arch}",
                file=f"align_integration/assets/{revision}-{arch}.stl",
            )
    migrate_forward()
    from align_integration.adapters import get_adapter
    from align_integration.models import CaseAsset, IteroConnection, IteroScan

    paired = IteroConnection.objects.get(account_number="LAB-7")
    assert paired.pk == 1 and paired.is_paired and paired.refresh_token == "refresh-7"
    assert paired.endpoints == {"orders": "https://api.itero.test/orders"}
    assert list(IteroConnection.objects.paired()) == [paired]
    assert IteroConnection.load("LAB-8").pk != 1  # a second account fits in next to it
    scans = {scan.revision: scan for scan in IteroScan.objects.all()}
    assert {scan.account_number for scan in scans.values()} == {"LAB-7"}
    assert (scans["v1"].state, scans["v2"].state) == ("superseded", "downloaded")
    assert scans["v2"].lab_status == "Ready For Download"
    assert scans["v2"].fetched_assets == ["ide"]
    assert CaseAsset.objects.filter(case=case).count() == 4  # nothing deleted
    current = CaseAsset.objects.current().filter(case=case)
    assert sorted(current.values_list("source_ref", flat=True)) == [
        "rx-1:v2:sha256-lower",
        "rx-1:v2:sha256-upper",
    ]
    assert get_adapter().stl_file_count(case) == 2


def test_a_sign_in_over_a_pairing_becomes_the_sign_in_row(old_apps: Any) -> None:
    old_connection = old_apps.get_model(APP, "IteroConnection")
    old_connection.objects.create(
        pk=1,
        account_number="LAB-7",
        state="authorized",
        refresh_token_encrypted=encrypt_token("sign-in-refresh"),
    )
    migrate_forward()
    from align_integration.models import IteroConnection

    sign_in = IteroConnection.objects.get(account_number="")
    assert sign_in.state == "authorized" and sign_in.refresh_token == "sign-in-refresh"
    account = IteroConnection.objects.get(account_number="LAB-7")
    assert account.state == "needs_repairing" and account.refresh_token == ""
    assert account.knows_account and "pair the account again" in account.last_error


def test_a_sign_in_alone_stays_the_sign_in_row(old_apps: Any) -> None:
    old_connection = old_apps.get_model(APP, "IteroConnection")
    old_connection.objects.create(
        pk=1, state="authorized", refresh_token_encrypted=encrypt_token("r")
    )
    migrate_forward()
    from align_integration.models import IteroConnection

    assert IteroConnection.load().pk == 1
    assert IteroConnection.load().refresh_token == "r"
    assert not IteroConnection.objects.lab_accounts().exists()
