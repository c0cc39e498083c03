"""``manage.py align_doctor``: is this deployment able to talk to Align?

Checks, one line each (``OK name: detail``, ``WARN name: detail`` or ``FAIL name: reason``),
never printing a secret: the app's settings (its system checks), the token cache (set, get,
delete a key), a bearer token from the Align integration service, the service answering an
authenticated read, the tasks backend, the background work waiting, the iTero pairing when
the connector is configured, and the outbound pause switch (``align-outbound-paused``: while
it is on, the token and service checks call nothing and warn "not checked").  Exits 0 only
when no check failed (a warning passes).  The checks that call no vendor live in
``align_integration.health``, shared with the ``health`` endpoint.

    manage.py align_doctor
    manage.py align_doctor --refresh-token    # drop the cached token: prove the credentials
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from align_integration.client.errors import AlignError
from align_integration.client.service import AlignServiceClient
from align_integration.client.token import forget_tokens
from align_integration.conf import get_setting
from align_integration.health import (
    FAILED,
    WARNING,
    CheckFailed,
    CheckWarning,
    check_backlog,
    check_cache,
    check_itero,
    check_paused,
    check_settings,
    check_tasks,
    describe_error,
    run_check,
)
from align_integration.outbound import outbound_paused
from align_integration.workflows.reachability import note_call

NOT_CHECKED = "not checked: outbound traffic is paused (nothing is sent)"


def check_token(client: Any, refresh: bool) -> str:
    if outbound_paused():
        raise CheckWarning(NOT_CHECKED)
    if refresh:
        forget_tokens(get_setting("TOKEN_CACHE"))
    cached = client.tokens._cached() is not None
    try:
        client.token  # noqa: B018 - fetches (or reads) the token
    except Exception as error:
        raise CheckFailed(f"no token: {describe_error(error)}") from None
    return "bearer token read from the cache" if cached else "new bearer token obtained"


def check_service(client: Any, token_ok: bool) -> str:
    if outbound_paused():
        raise CheckWarning(NOT_CHECKED)
    base_url = get_setting("SERVICE", "BASE_URL")
    if not token_ok:  # at least tell whether the service answers at all
        try:
            response = requests.get(base_url, timeout=5, allow_redirects=False)
        except requests.RequestException as error:
            raise CheckFailed(f"no answer from the service: {describe_error(error)}") from None
        raise CheckFailed(f"the service answers (HTTP {response.status_code}) but no token")
    try:
        client.find_patients("align-doctor-probe")
    except AlignError as error:
        note_call("find_patients", error)
        raise CheckFailed(f"an authenticated read failed: {describe_error(error)}") from None
    except Exception as error:
        raise CheckFailed(f"an authenticated read failed: {describe_error(error)}") from None
    note_call("find_patients")
    return "the service answers an authenticated read"


class Command(BaseCommand):
    help = "Check settings, token cache, token, service, tasks backend, iTero pairing, pause."
    requires_system_checks: list[str] = []  # the settings check reports them as one line

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--refresh-token",
            action="store_true",
            help="Drop the cached token first, so the credentials themselves are tested.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = AlignServiceClient()
        results: dict[str, bool] = {}

        def run(name: str, check: Callable[[], str]) -> None:
            result = run_check(name, check)
            results[name] = result.passed
            if result.state == FAILED:
                self.stdout.write(self.style.ERROR(f"FAIL {name}: {result.detail}"))
            elif result.state == WARNING:
                self.stdout.write(self.style.WARNING(f"WARN {name}") + f": {result.detail}")
            else:
                self.stdout.write(self.style.SUCCESS(f"OK {name}") + f": {result.detail}")

        try:
            run("settings", check_settings)
            run("cache", check_cache)
            run("token", lambda: check_token(client, options["refresh_token"]))
            run("service", lambda: check_service(client, results["token"]))
            run("tasks", check_tasks)
            run("backlog", check_backlog)
            run("itero", check_itero)
            run("paused", check_paused)
        finally:
            client.close()
        failed = [name for name, ok in results.items() if not ok]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
