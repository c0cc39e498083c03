"""The connection to iTero end to end against the sandbox: pairing through the pages,
Discovery before refreshes, a refused refresh, discovered URLs on unlisted hosts, unpairing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from align_integration.models import CaseAsset, IteroConnection, IteroNotification, IteroScan
from align_integration.testing.settings import SANDBOX_NOTIFICATION_TOKEN
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.connection import forget_token
from align_integration.workflows.itero.polling import poll_orders
from tests.itero.helpers import (
    ACCOUNT,
    connection_of,
    notify,
    pair_through_pages,
    sign_in,
    unpair_url,
)

CHART = "CHART-4242"


def test_pairing_through_the_pages(itero_sandbox: Any, staff_client: Client) -> None:
    connection = pair_through_pages(staff_client)
    assert connection.account_number == ACCOUNT and connection.account_name == "Sandbox Lab"
    assert set(connection.endpoints) >= {"orders", "order", "download", "pair"}
    assert (
        connection.refresh_token
        and connection.refresh_token not in connection.refresh_token_encrypted
    )
    pair_call = itero_sandbox.calls("pair")[-1]
    assert pair_call.json["callbackUrl"].endswith(
        f"/align/itero/notifications/{SANDBOX_NOTIFICATION_TOKEN}/"
    )
    assert itero_sandbox.itero.paired[ACCOUNT] == pair_call.json["callbackUrl"]
    status = staff_client.get(reverse("align_integration:itero-status")).content.decode()
    assert "Paired" in status and ACCOUNT in status


def test_discovery_runs_before_every_refresh(paired: Any, itero_sandbox: Any) -> None:
    before = len(itero_sandbox.requests)
    forget_token()  # the cached access token is gone: the next call refreshes
    poll_orders(force=True)
    calls = [r.call for r in itero_sandbox.requests[before:]]
    assert calls == ["discovery", "itero_token", "orders"]
    # With the stored access token expired too, Discovery follows the refresh at once.
    IteroConnection.objects.update(access_expires_at=timezone.now() - dt.timedelta(hours=1))
    itero_sandbox.itero.expire_tokens()
    forget_token()
    before = len(itero_sandbox.requests)
    poll_orders(force=True)
    assert [r.call for r in itero_sandbox.requests[before:]] == [
        "itero_token",
        "discovery",
        "orders",
    ]


def test_a_refused_refresh_needs_repairing_and_work_waits(
    paired: Any, itero_sandbox: Any, staff_client: Client, scan_case: Any
) -> None:
    rx_id = itero_sandbox.itero.create_scan(chart_number=CHART, notify=False)
    notify(staff_client, rx_id)
    forget_token()
    itero_sandbox.inject_fault("itero_token", status=400, body={"error": "invalid_grant"})
    run_due_itero_work()
    connection = connection_of()
    assert connection.state == IteroConnection.NEEDS_REPAIRING
    assert connection.refresh_token == ""
    assert IteroNotification.objects.get().state == IteroNotification.RECEIVED  # kept
    assert itero_sandbox.count("order") == 0
    page = staff_client.get(reverse("align_integration:itero-status")).content.decode()
    assert "needs re-pairing" in page
    # A notification arriving meanwhile is still kept: the pending one stands for it.
    assert notify(staff_client, rx_id).json() == {"status": "duplicate"}
    assert notify(staff_client, "rx-other").json() == {"status": "stored"}
    assert IteroNotification.objects.filter(state=IteroNotification.RECEIVED).count() == 2
    pair_through_pages(staff_client)
    run_due_itero_work()
    assert IteroScan.objects.get(rx_id=rx_id).state == IteroScan.DOWNLOADED
    assert CaseAsset.objects.filter(case=scan_case, kind=CaseAsset.STL, source="itero").count() == 2


def test_a_foreign_discovered_url_is_refused_before_any_token_leaves(
    itero_sandbox: Any, staff_client: Client
) -> None:
    port = itero_sandbox.port
    itero_sandbox.itero.discovery_overrides["accounts"] = (
        f"http://localhost:{port}/api/third-party/v1/accounts"  # same server, unlisted host
    )
    page = sign_in(staff_client)
    assert page.status_code == 502 and b"ALLOWED_HOSTS" in page.content
    assert itero_sandbox.count("accounts") == 0
    assert not [
        r for r in itero_sandbox.requests if r.headers.get("host", "").startswith("localhost")
    ]
    itero_sandbox.itero.discovery_overrides["accounts"] = "https://evil.example.net/accounts"
    assert sign_in(staff_client).status_code == 502
    assert itero_sandbox.count("accounts") == 0


def test_a_stored_endpoint_on_an_unlisted_host_is_refused(paired: Any, itero_sandbox: Any) -> None:
    from align_integration.client.itero import IteroUnsafeURL

    connection = connection_of()
    connection.endpoints = {
        **connection.endpoints,
        "orders": f"http://localhost:{itero_sandbox.port}/api/third-party/v1/orders/lab",
    }
    connection.save()
    with pytest.raises(IteroUnsafeURL):
        poll_orders(force=True)
    assert itero_sandbox.count("orders") == 0
    assert run_due_itero_work() == 0  # the worker logs it and goes on


def test_unpair_unpairs_and_logs_out(paired: Any, itero_sandbox: Any, staff_client: Client) -> None:
    response = staff_client.post(unpair_url())
    assert response.status_code == 302
    connection = connection_of()
    assert connection.state == IteroConnection.UNPAIRED and not connection.refresh_token
    assert ACCOUNT not in itero_sandbox.itero.paired
    assert itero_sandbox.calls("unpair")[0].json == {"accountNumber": ACCOUNT}
    assert itero_sandbox.count("itero_revoke") == 2
    assert notify(staff_client, "rx-x").json() == {"status": "ignored"}
    assert run_due_itero_work() == 0
