"""The deployment's health checks, shared by ``align_doctor`` and the ``health`` endpoint.

Each check is a function returning a one-line detail, or raising :class:`CheckFailed`
(unhealthy) or :class:`CheckWarning` (worth seeing, not unhealthy).  Details are safe to
show: no secret, no patient data.  The checks here are cheap and never call a vendor:
``align_doctor`` adds its own network checks (token, an authenticated read) around them,
and the endpoint reports Align's reachability as last noted by the calls the app made
(``workflows.reachability``).

This module sits between the entry points and ``tasks``/``worker`` in the layers: it reads
the backlog through the worker's own query and the task backend through ``tasks``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.core.cache import caches
from django.core.checks import ERROR, Tags, run_checks
from django.utils import timezone

from align_integration import tasks
from align_integration.conf import get_setting
from align_integration.models import CallbackEvent, IteroConnection, RemoteOperation
from align_integration.outbound import SWITCH, outbound_paused
from align_integration.workflows.due import due_operations
from align_integration.workflows.reachability import ALIGN, last_reachability

#: The waffle switch that stops everything outbound (contract §8; see ``outbound``).
OUTBOUND_PAUSED_SWITCH = SWITCH
#: At most this many due operations are read to count them.
BACKLOG_COUNT_LIMIT = 1000

OK = "ok"
WARNING = "warning"
FAILED = "failed"


class CheckFailed(Exception):
    """A check's reason for failing (safe to show: no secret, no patient data)."""


class CheckWarning(Exception):
    """A check passed, but says something an operator should see."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: its name, ``ok``/``warning``/``failed`` and a detail line."""

    name: str
    state: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.state != FAILED

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.passed, "state": self.state, "detail": self.detail}


def describe_error(error: BaseException) -> str:
    """An exception as its class name and HTTP status: never its message (it may hold data)."""
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if status else "")


def run_check(name: str, check: Callable[[], str]) -> CheckResult:
    """Run one check; a check's own bug fails that check only."""
    try:
        return CheckResult(name, OK, check())
    except CheckWarning as warning:
        return CheckResult(name, WARNING, str(warning))
    except CheckFailed as failure:
        return CheckResult(name, FAILED, str(failure))
    except Exception as error:
        return CheckResult(name, FAILED, describe_error(error))


# -- the checks ---------------------------------------------------------------------------------
def check_settings(*, all_checks: bool = True) -> str:
    """The app's system checks.  ``all_checks=False`` runs only the ``compatibility``-tagged
    ones (where the app registers its own), a hundred times cheaper: for the endpoint."""
    config = apps.get_app_config("align_integration")
    tags = None if all_checks else [Tags.compatibility]
    messages = [
        message
        for message in run_checks(app_configs=[config], tags=tags)
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
        raise CheckFailed(f"cache {alias!r}: {describe_error(error)}") from None
    if read != value:
        raise CheckFailed(f"cache {alias!r} did not return the value just stored")
    if cache.get(key) is not None:
        raise CheckFailed(f"cache {alias!r} did not delete a key")
    return f"cache {alias!r} stores, reads and deletes"


def check_tasks() -> str:
    try:
        backend = tasks.task_backend()
    except Exception as error:
        raise CheckFailed(f"backend {tasks.backend_alias()!r}: {describe_error(error)}") from None
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if backend.supports_defer:
        return f"{name}: retries are enqueued on it (align_worker also finds them)"
    return f"{name} cannot defer: retries run by align_worker"


def _due_since(operation: RemoteOperation) -> dt.datetime | None:
    return operation.next_attempt_at or operation.claimed_until


def check_backlog() -> str:
    """Work waiting; fails when the oldest due operation has waited longer than
    ``BACKLOG_MAX_OVERDUE`` seconds (nothing runs the retries: is align_worker running?)."""
    try:
        due = due_operations(limit=BACKLOG_COUNT_LIMIT)
        failed = RemoteOperation.objects.filter(state=RemoteOperation.FAILED).count()
        callbacks = CallbackEvent.objects.filter(state=CallbackEvent.FAILED).count()
        unmatched = CallbackEvent.objects.filter(state=CallbackEvent.UNMATCHED).count()
    except Exception as error:
        raise CheckFailed(f"database: {describe_error(error)}") from None
    parked = (
        f"{failed} parked as failed, {callbacks} callbacks failed, {unmatched} callbacks "
        "unmatched (their case is not known yet)"
    )
    if not due:
        return f"nothing overdue; operations: {parked}"
    count = f"{len(due)}+" if len(due) >= BACKLOG_COUNT_LIMIT else str(len(due))
    since = [moment for moment in map(_due_since, due) if moment is not None]
    overdue = (timezone.now() - min(since)).total_seconds() if since else 0.0
    limit = float(get_setting("BACKLOG_MAX_OVERDUE"))
    text = f"{count} operations due, the oldest for {int(overdue)} s, {parked}"
    if overdue > limit:
        raise CheckFailed(f"{text}: over {int(limit)} s, is align_worker running?")
    return f"{text} (is align_worker running?)"


def check_itero() -> str:
    """The pairing of each iTero lab account: fails when none is paired, or when one needs
    re-pairing (its scans wait); un-paired accounts are only mentioned."""
    if not get_setting("ITERO", "CLIENT_ID"):
        return "iTero connector not configured"
    accounts = list(IteroConnection.objects.lab_accounts())
    paired = [row.account_number for row in accounts if row.state == IteroConnection.PAIRED]
    repairing = [row for row in accounts if row.state == IteroConnection.NEEDS_REPAIRING]
    unpaired = [row.account_number for row in accounts if row.state == IteroConnection.UNPAIRED]
    if repairing:
        reasons = "; ".join(
            f"{row.last_error or 'no reason noted'} (lab account {row.account_number})"
            for row in repairing
        )
        also = f"; paired: {', '.join(paired)}" if paired else ""
        raise CheckFailed(f"needs re-pairing: {reasons}{also}")
    if not paired:
        raise CheckFailed("not paired with an iTero lab account (admin: iTero connection)")
    plural = "s" if len(paired) > 1 else ""
    detail = f"paired with lab account{plural} {', '.join(paired)}"
    return detail + (f" (un-paired: {', '.join(unpaired)})" if unpaired else "")


def check_paused() -> str:
    """The outbound pause: a deliberate operator act, so a warning, not a failure."""
    if outbound_paused():
        raise CheckWarning(
            f"waffle switch {OUTBOUND_PAUSED_SWITCH!r} is on: nothing is sent to Align or iTero"
        )
    return "outbound calls are not paused"


def check_align_reachability() -> str:
    """What the last call the app made to Align showed (no call is made here)."""
    try:
        last = last_reachability(ALIGN)
    except Exception as error:
        raise CheckFailed(f"cannot read it: {describe_error(error)}") from None
    if last is None:
        raise CheckWarning("no call to Align noted yet (nothing sent lately)")
    if not last.reachable:
        raise CheckFailed(last.describe())
    return last.describe()


# -- the endpoint's set -------------------------------------------------------------------------
#: The checks the ``health`` endpoint runs on every probe, in order: all cheap, none calls
#: a vendor.
PROBE_CHECKS: dict[str, Callable[[], str]] = {
    "settings": lambda: check_settings(all_checks=False),
    "cache": check_cache,
    "tasks": check_tasks,
    "backlog": check_backlog,
    "itero": check_itero,
    "paused": check_paused,
    "align": check_align_reachability,
}


@dataclass(frozen=True)
class HealthReport:
    results: tuple[CheckResult, ...]

    @property
    def healthy(self) -> bool:
        return all(result.passed for result in self.results)

    def as_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "checks": {result.name: result.as_dict() for result in self.results},
        }


def probe() -> HealthReport:
    """Run :data:`PROBE_CHECKS`; never calls Align or iTero."""
    return HealthReport(tuple(run_check(name, check) for name, check in PROBE_CHECKS.items()))
