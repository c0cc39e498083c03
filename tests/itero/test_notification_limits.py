"""A valid token must not be a licence to fill the table: a flood of notifications for one
Rx id leaves one pending row, and past ``MAX_PENDING_NOTIFICATIONS`` the endpoint answers
503 with ``Retry-After`` (issue 13, finding 5)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from align_integration.models import IteroNotification
from tests.itero.helpers import ACCOUNT, notification_url


def post(client: Client, rx_id: str, account: str = ACCOUNT) -> Any:
    body = json.dumps({"rxId": rx_id, "accountNumber": account})
    return client.generic("POST", notification_url(), body, content_type="application/json")


def with_cap(settings: Any, cap: int) -> None:
    config = settings.ALIGN_INTEGRATION
    settings.ALIGN_INTEGRATION = {
        **config,
        "ITERO": {**config["ITERO"], "MAX_PENDING_NOTIFICATIONS": cap},
    }


def test_a_flood_for_one_rx_leaves_one_pending_row(
    client: Client, paired_connection: Any, django_assert_max_num_queries: Any
) -> None:
    first = post(client, "rx-flood")
    assert first.status_code == 202 and first.json() == {"status": "stored"}
    with django_assert_max_num_queries(200 * 3):  # no insert attempted for a repeat
        answers = [post(client, "rx-flood") for _ in range(200)]
    assert {(a.status_code, a.json()["status"]) for a in answers} == {(202, "duplicate")}
    assert IteroNotification.objects.count() == 1
    assert IteroNotification.objects.get().state == IteroNotification.RECEIVED


def test_once_processed_the_next_notification_is_kept_again(
    client: Client, paired_connection: Any
) -> None:
    post(client, "rx-1")
    IteroNotification.objects.update(state=IteroNotification.PROCESSED)
    assert post(client, "rx-1").json() == {"status": "stored"}
    assert IteroNotification.objects.filter(state=IteroNotification.RECEIVED).count() == 1
    assert IteroNotification.objects.count() == 2


def test_past_the_cap_new_rx_ids_are_refused_with_retry_after(
    client: Client, paired_connection: Any, settings: Any
) -> None:
    with_cap(settings, 3)
    for index in range(3):
        assert post(client, f"rx-{index}").status_code == 202
    refused = post(client, "rx-new")
    assert refused.status_code == 503
    assert int(refused["Retry-After"]) >= 120  # the poll interval: Get Orders finds it anyway
    assert "retry later" in refused.json()["reason"]
    # A repeat of a pending one costs nothing, even at the cap.
    assert post(client, "rx-0").json() == {"status": "duplicate"}
    assert IteroNotification.objects.count() == 3
    # Once the worker has handled some, notifications are taken again.
    IteroNotification.objects.filter(rx_id="rx-0").update(state=IteroNotification.PROCESSED)
    assert post(client, "rx-new").json() == {"status": "stored"}


def test_the_cap_counts_only_pending_rows(
    client: Client, paired_connection: Any, settings: Any
) -> None:
    with_cap(settings, 2)
    for index in range(5):
        assert post(client, f"rx-{index}").status_code == 202
        IteroNotification.objects.update(state=IteroNotification.PROCESSED)
    assert IteroNotification.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_store_one_row(
    postgres: None, itero_unit_settings: Any, paired_connection: Any
) -> None:
    statuses: list[str] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        try:
            barrier.wait()
            statuses.append(post(Client(), "rx-race").json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["duplicate"] * 5 + ["stored"]
    assert IteroNotification.objects.count() == 1
