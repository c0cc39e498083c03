"""Several iTero lab accounts paired at once (a group practice), against the sandbox: each
account's notifications, Get Orders polls and downloads go with its own token set (the
sandbox refuses another account's orders with it), and un-pairing or losing one account
leaves the other working."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from align_integration.client.token import forget_tokens
from align_integration.health import check_itero, run_check
from align_integration.models import IteroConnection, IteroNotification, IteroScan
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.connection import forget_token, token_cache
from align_integration.workflows.itero.polling import poll_orders
from tests.itero.helpers import ACCOUNT, connection_of, notify, pair_through_pages, unpair_url

OTHER = "LAB-2002"
CHART, OTHER_CHART = "CHART-4242", "CHART-7777"


@pytest.fixture
def two_accounts(itero_sandbox: Any, staff_client: Client) -> Any:
    itero_sandbox.itero.add_account(OTHER, name="Second Practice Lab")
    pair_through_pages(staff_client, ACCOUNT)
    pair_through_pages(staff_client, OTHER)
    return itero_sandbox


@pytest.fixture
def other_case(make_case: Any) -> Any:
    return make_case(stl_files=0, mrn=OTHER_CHART)


def bearer_of(request: Any) -> str:
    return str(request.headers.get("Authorization", "")).partition(" ")[2]


def test_two_accounts_are_paired_each_with_its_own_token_set(
    two_accounts: Any, staff_client: Client
) -> None:
    first, second = connection_of(ACCOUNT), connection_of(OTHER)
    assert first.state == second.state == IteroConnection.PAIRED
    assert second.account_name == "Second Practice Lab"
    assert first.refresh_token and second.refresh_token
    assert first.refresh_token != second.refresh_token
    assert set(two_accounts.itero.paired) == {ACCOUNT, OTHER}
    page = staff_client.get(reverse("align_integration:itero-status")).content.decode()
    assert ACCOUNT in page and OTHER in page
    assert unpair_url(ACCOUNT) in page and unpair_url(OTHER) in page
    assert run_check("itero", check_itero).detail == f"paired with lab accounts {ACCOUNT}, {OTHER}"
    # The test kit's (and align_doctor's) forget_tokens finds every account's cached token.
    assert token_cache(ACCOUNT).cached() and token_cache(OTHER).cached()
    forget_tokens(settings.ALIGN_INTEGRATION["TOKEN_CACHE"])
    assert token_cache(ACCOUNT).cached() is None and token_cache(OTHER).cached() is None


def test_notifications_of_each_account_use_its_own_token(
    two_accounts: Any, staff_client: Client, scan_case: Any, other_case: Any
) -> None:
    lab = two_accounts.itero
    mine = lab.create_scan(account_number=ACCOUNT, chart_number=CHART, notify=False)
    theirs = lab.create_scan(account_number=OTHER, chart_number=OTHER_CHART, notify=False)
    assert notify(staff_client, mine, ACCOUNT).json() == {"status": "stored"}
    assert notify(staff_client, theirs, OTHER).json() == {"status": "stored"}
    assert notify(staff_client, theirs, "LAB-UNKNOWN").json() == {"status": "ignored"}
    run_due_itero_work()
    first, second = IteroScan.objects.get(rx_id=mine), IteroScan.objects.get(rx_id=theirs)
    assert (first.state, first.account_number, first.case_id) == (
        IteroScan.DOWNLOADED,
        ACCOUNT,
        scan_case.pk,
    )
    assert (second.state, second.account_number, second.case_id) == (
        IteroScan.DOWNLOADED,
        OTHER,
        other_case.pk,
    )
    assert set(IteroNotification.objects.values_list("state", flat=True)) == {"processed"}
    # Each look-up and download went with the token of the order's own account (the sandbox
    # answers 404 to another account's token, so a mix-up could not have succeeded).
    for rx_id, account in ((mine, ACCOUNT), (theirs, OTHER)):
        calls = [c for c in two_accounts.requests if c.rx_id == rx_id and c.call != "notify"]
        assert {c.call for c in calls} == {"order", "download"}
        assert {bearer_of(c) for c in calls} == {connection_of(account).access_token}


def test_get_orders_is_polled_per_account_with_its_token(
    two_accounts: Any, scan_case: Any, other_case: Any
) -> None:
    lab = two_accounts.itero
    mine = lab.create_scan(account_number=ACCOUNT, chart_number=CHART, notify=False)
    theirs = lab.create_scan(account_number=OTHER, chart_number=OTHER_CHART, notify=False)
    run_due_itero_work()
    polls = two_accounts.calls("orders")
    assert len(polls) == 2
    assert {bearer_of(call) for call in polls} == {
        connection_of(ACCOUNT).access_token,
        connection_of(OTHER).access_token,
    }
    assert IteroScan.objects.get(rx_id=mine).case_id == scan_case.pk
    assert IteroScan.objects.get(rx_id=theirs).case_id == other_case.pk
    assert connection_of(ACCOUNT).last_poll_at and connection_of(OTHER).last_poll_at
    run_due_itero_work()  # both windows are taken: no second poll of either
    assert two_accounts.count("orders") == 2


def test_unpairing_one_account_leaves_the_other(
    two_accounts: Any, staff_client: Client, other_case: Any
) -> None:
    page = staff_client.get(unpair_url(ACCOUNT)).content.decode()
    assert ACCOUNT in page and "every user" in page
    assert staff_client.post(unpair_url(ACCOUNT)).status_code == 302
    assert two_accounts.calls("unpair")[-1].json == {"accountNumber": ACCOUNT}
    assert set(two_accounts.itero.paired) == {OTHER}
    first, second = connection_of(ACCOUNT), connection_of(OTHER)
    assert first.state == IteroConnection.UNPAIRED and not first.refresh_token
    assert second.state == IteroConnection.PAIRED and second.refresh_token
    assert notify(staff_client, "rx-gone", ACCOUNT).json() == {"status": "ignored"}
    theirs = two_accounts.itero.create_scan(
        account_number=OTHER, chart_number=OTHER_CHART, notify=False
    )
    assert notify(staff_client, theirs, OTHER).json() == {"status": "stored"}
    run_due_itero_work()
    assert IteroScan.objects.get(rx_id=theirs).state == IteroScan.DOWNLOADED
    assert poll_orders(force=True) == 0
    assert {bearer_of(call) for call in two_accounts.calls("orders")} == {second.access_token}
    assert run_check("itero", check_itero).detail == (
        f"paired with lab account {OTHER} (un-paired: {ACCOUNT})"
    )


def test_one_account_needing_re_pairing_does_not_stop_the_other(
    two_accounts: Any, staff_client: Client, scan_case: Any, other_case: Any
) -> None:
    lab = two_accounts.itero
    mine = lab.create_scan(account_number=ACCOUNT, chart_number=CHART, notify=False)
    theirs = lab.create_scan(account_number=OTHER, chart_number=OTHER_CHART, notify=False)
    notify(staff_client, mine, ACCOUNT)
    notify(staff_client, theirs, OTHER)
    forget_token(ACCOUNT)  # only the first account must refresh, and its refresh is refused
    two_accounts.inject_fault("itero_token", status=400, body={"error": "invalid_grant"})
    run_due_itero_work()
    assert connection_of(ACCOUNT).state == IteroConnection.NEEDS_REPAIRING
    assert connection_of(OTHER).state == IteroConnection.PAIRED
    assert IteroScan.objects.get(rx_id=theirs).state == IteroScan.DOWNLOADED
    assert not IteroScan.objects.filter(rx_id=mine)  # its notification waits, kept
    assert IteroNotification.objects.get(rx_id=mine).state == IteroNotification.RECEIVED
    result = run_check("itero", check_itero)
    assert not result.passed
    assert f"(lab account {ACCOUNT})" in result.detail and f"paired: {OTHER}" in result.detail
    page = staff_client.get(reverse("align_integration:itero-status")).content.decode()
    assert 'id="itero-needs-repairing"' in page
    pair_through_pages(staff_client, ACCOUNT)  # staff pair it again: the waiting work runs
    run_due_itero_work()
    assert IteroScan.objects.get(rx_id=mine).state == IteroScan.DOWNLOADED
