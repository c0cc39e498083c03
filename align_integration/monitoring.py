"""What the app's metrics observe in the database: backlog, failures, waiting scans.

Each observation is a cheap aggregate query, run only when the host's metric reader
collects (every export interval), never per request.  Registered from ``AppConfig.ready``
through :func:`align_integration.telemetry.register_gauges`; a no-op without the ``otel``
extra.
"""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from align_integration import telemetry
from align_integration.models import CallbackEvent, IteroScan, RemoteOperation

Labelled = list[tuple[float, dict[str, str]]]


def operations_by_state() -> Labelled:
    rows = RemoteOperation.objects.values("state").annotate(n=Count("pk")).order_by()
    counts = {row["state"]: row["n"] for row in rows}
    return [(float(counts.get(state, 0)), {"state": state}) for state, _ in RemoteOperation.STATES]


def oldest_due_operation_age() -> Labelled:
    """Seconds since the oldest scheduled retry became due (0 when nothing is overdue)."""
    oldest = RemoteOperation.objects.filter(
        state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at__lte=timezone.now()
    ).aggregate(oldest=Min("next_attempt_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return [(max(0.0, age), {})]


def callbacks_needing_attention() -> Labelled:
    rows = (
        CallbackEvent.objects.exclude(state=CallbackEvent.PROCESSED)
        .values("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {row["state"]: row["n"] for row in rows}
    watched = [CallbackEvent.FAILED, getattr(CallbackEvent, "UNMATCHED", "unmatched")]
    return [(float(counts.get(state, 0)), {"state": state}) for state in watched]


def itero_scans_waiting() -> Labelled:
    rows = (
        IteroScan.objects.filter(
            state__in=[IteroScan.PENDING, IteroScan.WAITING_FOR_CASE, IteroScan.FAILED]
        )
        .values("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {row["state"]: row["n"] for row in rows}
    watched = [IteroScan.PENDING, IteroScan.WAITING_FOR_CASE, IteroScan.FAILED]
    return [(float(counts.get(state, 0)), {"state": state}) for state in watched]


GAUGES: list[telemetry.Observation] = [
    (
        "align.operations",
        "Remote operations by state (pending, in progress, retry scheduled, failed...)",
        "{operation}",
        operations_by_state,
    ),
    (
        "align.operations.oldest_due_age",
        "Seconds the oldest due retry has waited for a worker",
        "s",
        oldest_due_operation_age,
    ),
    (
        "align.callbacks.attention",
        "Stored callbacks that failed or whose case is not known yet",
        "{callback}",
        callbacks_needing_attention,
    ),
    (
        "align.itero.scans_waiting",
        "iTero scans not yet downloaded, waiting for a case, or failed",
        "{scan}",
        itero_scans_waiting,
    ),
]


def register() -> None:
    telemetry.register_gauges(GAUGES)
