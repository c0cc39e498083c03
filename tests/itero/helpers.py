"""Helpers shared by the iTero tests: pairing through the real pages, notifications,
and hand-made (sometimes malicious) zip archives."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from typing import Any
from urllib.parse import urlsplit

import requests
from django.test import Client
from django.urls import reverse

from align_integration.conf import get_setting
from align_integration.models import IteroConnection

ACCOUNT = "LAB-1001"


def sign_in(client: Client) -> Any:
    """Connect → the sandbox's login page → back to the OAuth callback; its response."""
    start = client.get(reverse("align_integration:itero-connect"))
    assert start.status_code == 302, start.content
    login = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert login.status_code == 302, login.text
    back = urlsplit(login.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def pair_through_pages(client: Client, account: str = ACCOUNT) -> IteroConnection:
    accounts_page = sign_in(client)
    assert accounts_page.status_code == 200, accounts_page.content
    assert account in accounts_page.content.decode()
    paired = client.post(reverse("align_integration:itero-pair"), {"account_number": account})
    assert paired.status_code == 302, paired.content
    connection = IteroConnection.for_account(account)
    assert connection is not None and connection.state == IteroConnection.PAIRED
    return connection


def connection_of(account: str = ACCOUNT) -> IteroConnection:
    connection = IteroConnection.for_account(account)
    assert connection is not None
    return connection


def unpair_url(account: str = ACCOUNT) -> str:
    return reverse("align_integration:itero-unpair", kwargs={"account_number": account})


def notification_url(token: str | None = None) -> str:
    token = token if token is not None else get_setting("ITERO", "NOTIFICATION_TOKEN")
    return reverse("align_integration:itero-notifications", kwargs={"token": token})


def notify(client: Client, rx_id: str, account: str = ACCOUNT) -> Any:
    body = json.dumps({"rxId": rx_id, "accountNumber": account})
    return client.post(notification_url(), body, content_type="application/json")


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def zip_with_symlink(name: str = "rx/link.stl", target: str = "/etc/passwd") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rx/upper.stl", b"solid a\nendsolid a\n")
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()
