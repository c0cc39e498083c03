"""Pair the demo with the sandbox's iTero lab, as staff would through the admin pages.

Runs the same steps as the ``itero-connect`` → sign-in → ``itero-pair`` pages, without a
browser: the sandbox's login page answers at once with a code.  ``demo/run.py`` calls it
once the sandbox and the site answer, so new scans reach the demo's cases.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from demo_project.env import demo_url
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from align_integration.conf import get_setting
from align_integration.models import IteroConnection
from align_integration.workflows.itero.pairing import (
    complete_authorization,
    login_redirect_url,
    pair_account,
)


class Command(BaseCommand):
    help = "Pair the demo with the sandbox's iTero lab account (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        if IteroConnection.objects.paired().exists():
            self.stdout.write("iTero: already paired with the sandbox lab.")
            return
        site = demo_url()
        redirect_uri = site + reverse("align_integration:itero-oauth-callback")
        state = secrets.token_urlsafe(16)
        login = requests.get(
            login_redirect_url(redirect_uri=redirect_uri, state=state),
            allow_redirects=False,
            timeout=10,
        )
        query = parse_qs(urlsplit(login.headers.get("Location", "")).query)
        if login.status_code != 302 or query.get("state") != [state] or "code" not in query:
            raise CommandError(f"the sandbox's iTero login answered {login.status_code}")
        accounts = complete_authorization(query["code"][0], redirect_uri)
        if not accounts:
            raise CommandError("the sandbox offered no lab account to pair with")
        token = get_setting("ITERO", "NOTIFICATION_TOKEN")
        callback = site + reverse("align_integration:itero-notifications", kwargs={"token": token})
        connection = pair_account(accounts[0]["account_number"], callback)
        self.stdout.write(f"iTero: paired with lab account {connection.account_number}.")
