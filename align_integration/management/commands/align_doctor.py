"""``manage.py align_doctor``: is this deployment able to talk to Align?

Checks, one line each (``OK name: detail`` or ``FAIL name: reason``), never printing a
secret: the app's settings (its system checks), the token cache (set, get, delete a key),
a bearer token from the Align integration service, the service answering an authenticated
read, the tasks backend, the background work waiting, and the iTero pairing when the
connector is configured.  Exits 0 only when every check passed.

    manage.py align_doctor
    manage.py align_doctor --refresh-token    # drop the cached token: prove the credentials
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.core.cache import caches
from django.core.checks import ERROR, run_checks
from django.core.management.base import BaseCommand, CommandError, CommandParser

from align_integration import tasks
from align_integration.client.service import AlignServiceClient
from align_integration.client.token import forget_tokens
from align_integration.conf import get_setting
from align_integration.models import CallbackEvent, IteroConnection, RemoteOperation
from align_integration.worker import due_operations


class CheckFailed(Exception):
    """A check's reason for failing (safe to print: no secret, no patient data)."""


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if status else "")


def check_settings() -> str:
    config = apps.get_app_config("align_integration")
    messages = [
        message
        for message in run_checks(app_configs=[config])
        if (message.id or "").startswith("align_integration.") and not message.is_silenced()
    ]
    errors = [m for m in messages if m.level >= ERROR]
    if errors:
        raise CheckFailed("; ".join(f"{m.id} {m.msg}" for m in errors))
    warnings = [str(m.id) for m in messages]
    return "system checks pass" + (f" (warnings: {', '.join(warnings)})" if warnings else "")


def check_cache() -> str:
    alias = get_setting("TOKEN_CACHE")
    try:
        cache = caches[alias]
        key = f"align_integration:doctor:{uuid.uuid4().hex}"
        value = uuid.uuid4().hex
        cache.set(key, value, timeout=30)
        read = cache.get(key)
        cache.delete(key)
    except Exception as error:
        raise CheckFailed(f"cache {alias!r}: {_describe(error)}") from None
    if read != value:
        raise CheckFailed(f"cache {alias!r} did not return the value just stored")
    if cache.get(key) is not None:
        raise CheckFailed(f"cache {alias!r} did not delete a key")
    return f"cache {alias!r} stores, reads and deletes"


def check_token(client: Any, refresh: bool) -> str:
    if refresh:
        forget_tokens(get_setting("TOKEN_CACHE"))
    cached = client.tokens._cached() is not None
    try:
        client.token  # noqa: B018 - fetches (or reads) the token
    except Exception as error:
        raise CheckFailed(f"no token: {_describe(error)}") from None
    return "bearer token read from the cache" if cached else "new bearer token obtained"


def check_service(client: Any, token_ok: bool) -> str:
    import requests

    base_url = get_setting("SERVICE", "BASE_URL")
    if not token_ok:  # at least tell whether the service answers at all
        try:
            response = requests.get(base_url, timeout=5, allow_redirects=False)
        except requests.RequestException as error:
            raise CheckFailed(f"no answer from the service: {_describe(error)}") from None
        raise CheckFailed(f"the service answers (HTTP {response.status_code}) but no token")
    try:
        client.find_patients("align-doctor-probe")
    except Exception as error:
        raise CheckFailed(f"an authenticated read failed: {_describe(error)}") from None
    return "the service answers an authenticated read"


def check_tasks() -> str:
    try:
        backend = tasks.task_backend()
    except Exception as error:
        raise CheckFailed(f"backend {tasks.backend_alias()!r}: {_describe(error)}") from None
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if backend.supports_defer:
        return f"{name}: retries are enqueued on it (align_worker also finds them)"
    return f"{name} cannot defer: retries run by align_worker"


def check_backlog() -> str:
    try:
        due = len(due_operations(limit=1000))
        failed = RemoteOperation.objects.filter(state=RemoteOperation.FAILED).count()
        callbacks = CallbackEvent.objects.filter(state=CallbackEvent.FAILED).count()
        unmatched = CallbackEvent.objects.filter(state=CallbackEvent.UNMATCHED).count()
    except Exception as error:
        raise CheckFailed(f"database: {_describe(error)}") from None
    parked = (
        f"{failed} operations parked as failed, {callbacks} callbacks failed, "
        f"{unmatched} callbacks unmatched (their case is not known yet)"
    )
    return (
        f"{due} operations due, {parked} (is align_worker running?)"
        if due
        else f"nothing overdue; {parked}"
    )


def check_itero() -> str:
    if not get_setting("ITERO", "CLIENT_ID"):
        return "iTero connector not configured"
    connection = IteroConnection.objects.filter(pk=1).first()
    if connection is None or connection.state in (
        IteroConnection.UNPAIRED,
        IteroConnection.AUTHORIZED,
    ):
        raise CheckFailed("not paired with an iTero lab account (admin: iTero connection)")
    if connection.state == IteroConnection.NEEDS_REPAIRING:
        raise CheckFailed(
            "needs re-pairing" + (f": {connection.last_error}" if connection.last_error else "")
        )
    return f"paired with lab account {connection.account_number}"


class Command(BaseCommand):
    help = "Check settings, token cache, token, service, tasks backend and iTero pairing."
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
            try:
                detail = check()
            except CheckFailed as failure:
                results[name] = False
                self.stdout.write(self.style.ERROR(f"FAIL {name}: {failure}"))
            except Exception as error:  # a check's own bug must not hide the others
                results[name] = False
                self.stdout.write(self.style.ERROR(f"FAIL {name}: {_describe(error)}"))
            else:
                results[name] = True
                self.stdout.write(self.style.SUCCESS(f"OK {name}") + f": {detail}")

        try:
            run("settings", check_settings)
            run("cache", check_cache)
            run("token", lambda: check_token(client, options["refresh_token"]))
            run("service", lambda: check_service(client, results["token"]))
            run("tasks", check_tasks)
            run("backlog", check_backlog)
            run("itero", check_itero)
        finally:
            client.close()
        failed = [name for name, ok in results.items() if not ok]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
