"""Tokens encrypted at rest, the worker entry point when unconfigured, and the admin pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from align_integration.models import IteroConnection, IteroNotification, IteroScan
from align_integration.workflows.itero import run_due_itero_work


def test_tokens_are_encrypted_and_survive_a_key_rotation(db: Any, settings: Any) -> None:
    connection = IteroConnection.load()
    connection.refresh_token = "refresh-secret-value"
    connection.save()
    raw = IteroConnection.objects.values_list("refresh_token_encrypted", flat=True).get()
    assert "refresh-secret-value" not in raw
    assert IteroConnection.load().refresh_token == "refresh-secret-value"
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key"
    assert IteroConnection.load().refresh_token == "refresh-secret-value"
    settings.SECRET_KEY_FALLBACKS = []
    assert IteroConnection.load().refresh_token == ""  # unreadable: treated as no token


def test_the_worker_does_nothing_when_itero_is_not_configured(db: Any) -> None:
    IteroNotification.objects.create(rx_id="rx-1", account_number="LAB-1")
    assert run_due_itero_work() == 0


@pytest.mark.parametrize("model", ["iteroconnection", "iteroscan", "iteronotification"])
def test_admin_pages_render_read_only(admin_user: Any, db: Any, model: str) -> None:
    connection = IteroConnection.load()
    connection.callback_url = "https://lab.test/align/itero/notifications/super-secret/"
    connection.save()
    scan = IteroScan.objects.create(rx_id="rx-1", revision="v1")
    IteroNotification.objects.create(rx_id="rx-1", account_number="LAB-1", scan=scan)
    client = Client()
    client.force_login(admin_user)
    changelist = client.get(reverse(f"admin:align_integration_{model}_changelist"))
    assert changelist.status_code == 200
    assert b"super-secret" not in changelist.content
    assert client.get(reverse(f"admin:align_integration_{model}_add")).status_code == 403
    obj = {"iteroconnection": connection, "iteroscan": scan}.get(model)
    if obj is not None:
        page = client.get(reverse(f"admin:align_integration_{model}_change", args=[obj.pk]))
        assert page.status_code == 200 and b"super-secret" not in page.content
        assert b'name="rx_id"' not in page.content  # read-only


def test_connection_admin_links_to_the_pages(admin_user: Any, db: Any) -> None:
    IteroConnection.load()  # the sign-in row
    paired = IteroConnection.load("LAB-7")
    paired.set_state(IteroConnection.PAIRED)
    paired.save()
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("admin:align_integration_iteroconnection_changelist")).content
    for name in ("itero-status", "itero-connect"):
        assert reverse(f"align_integration:{name}").encode() in page
    assert reverse("align_integration:itero-unpair", args=["LAB-7"]).encode() in page
    assert b"(iTero sign-in)" in page
