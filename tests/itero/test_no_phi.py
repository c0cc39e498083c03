"""No patient name, chart number, token or secret in any log record, timeline entry or
stored iTero row, whatever the flow did."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from align_integration.models import CaseEvent, IteroConnection, IteroNotification, IteroScan
from align_integration.testing.settings import SANDBOX_NOTIFICATION_TOKEN
from align_integration.workflows.itero import run_due_itero_work
from align_integration.workflows.itero.connection import forget_token
from align_integration.workflows.itero.returns import return_scan_to_doctor
from tests.itero.helpers import connection_of, notify, pair_through_pages, unpair_url

FIRST, LAST, CHART = "Quintessa", "Marlowe", "CHART-4242"
OTHER_FIRST, OTHER_LAST, OTHER_CHART = "Bartholomew", "Quibble", "CHART-UNMATCHED-99"


def test_no_patient_data_or_secret_in_logs_or_rows(
    itero_sandbox: Any,
    staff_client: Client,
    scan_case: Any,
    admin_user: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = itero_sandbox.itero
    pair_through_pages(staff_client)

    matched = lab.create_scan(
        chart_number=CHART, first_name=FIRST, last_name=LAST, not_ready_downloads=1, notify=False
    )
    unmatched = lab.create_scan(
        chart_number=OTHER_CHART, first_name=OTHER_FIRST, last_name=OTHER_LAST, notify=False
    )
    notify(staff_client, matched)
    notify(staff_client, unmatched)
    staff_client.post(
        reverse("align_integration:itero-notifications", kwargs={"token": "wrong"}),
        "{}",
        content_type="application/json",
    )
    run_due_itero_work()  # 404 on the matched one, the other waits
    IteroScan.objects.update(next_attempt_at=timezone.now())
    forget_token()  # force a refresh (and Discovery) in the middle
    run_due_itero_work()
    admin = Client()
    admin.force_login(admin_user)
    admin.post(
        reverse("admin:align_integration_iteroscan_changelist"),
        {
            "action": "link_to_case",
            "_selected_action": [IteroScan.objects.get(rx_id=unmatched).pk],
            "apply": "1",
            "case_reference": str(scan_case.uuid),
        },
    )
    return_scan_to_doctor(IteroScan.objects.get(rx_id=matched), "rescan please")
    itero_sandbox.inject_fault("download", drop="partial")
    lab.update_scan(matched, notify=False)
    notify(staff_client, matched)
    run_due_itero_work()
    staff_client.post(unpair_url())
    states = sorted(IteroScan.objects.values_list("state", flat=True))
    assert states == ["downloaded", "pending", "returned"]  # v2 of the first: cut short
    assert connection_of().state == "unpaired"

    with lab.auth.lock:
        tokens = set(lab.auth._access) | set(lab.auth._refresh)
        tokens |= {t for s in lab.auth._current.values() for t in s.values() if isinstance(t, str)}
    tokens = {token for token in tokens if len(token) > 12}
    assert tokens
    secrets = {lab.auth.client_secret, SANDBOX_NOTIFICATION_TOKEN}
    forbidden = {FIRST, LAST, CHART, OTHER_FIRST, OTHER_LAST, OTHER_CHART} | tokens | secrets

    def leaks(text: str) -> set[str]:
        return {value for value in forbidden if value in text}

    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert not leaks(text), (record.name, text)
    for event in CaseEvent.objects.all():
        assert not leaks(event.message), event.message
    for scan in IteroScan.objects.all():
        assert not leaks(json.dumps(scan.order_summary) + scan.last_error)
    for notification in IteroNotification.objects.all():
        assert not leaks(notification.outcome + notification.rx_id)
    stored = " ".join(
        field
        for connection in IteroConnection.objects.all()
        for field in (
            connection.refresh_token_encrypted,
            connection.access_token_encrypted,
            connection.last_error,
        )
    )
    assert not leaks(stored)
