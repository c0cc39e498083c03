"""Running the drift check over many cases: selection, the batch action, ``--fix``, report.

The check runs as a batch action (:class:`ReconcileAction`) on the batch runner, so it has
the batch commands' concurrency, pacing and back-off, per-row error handling and Ctrl-C.
Per case it asks Align's two find calls (GET only) and compares (``reconcile.drift``).
With ``fix`` it adopts Align's ids where exactly one candidate exists: a conditional
update of ``AlignCase`` (only if nobody changed the ids meanwhile and no send holds the
case), recorded on the case's timeline.  It never creates or deletes anything at Align.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from align_integration.adapters import get_adapter
from align_integration.cases import align_patient_id
from align_integration.client.errors import AlignError
from align_integration.client.service import AlignServiceClient
from align_integration.conf import get_setting
from align_integration.models import AlignCase, CaseEvent
from align_integration.workflows.batch.actions import (
    DUPLICATE,
    FAILED,
    NOT_RUN,
    PAUSED,
    CaseAction,
    Plan,
    RowOutcome,
)
from align_integration.workflows.batch.report import BatchReport, RowResult
from align_integration.workflows.batch.rows import InputRow, command_line_rows
from align_integration.workflows.batch.runner import BatchRunner
from align_integration.workflows.reachability import note_call
from align_integration.workflows.reconcile.drift import ORDER, PATIENT, Comparison, compare
from align_integration.workflows.timeline import record

logger = logging.getLogger("align_integration.reconcile")

ACTION = "reconcile"
IN_STEP = "in step"
DRIFT = "drift"
FIXED = "fixed"
REPORT_COLUMNS = (
    "case_id",
    "align_case_id",
    "outcome",
    "status",
    "drift",
    "patient_here",
    "patient_at_align",
    "order_here",
    "order_at_align",
    "fixed",
    "message",
)


@dataclass(frozen=True)
class CaseDrift:
    """What was found for one case, and what ``--fix`` adopted."""

    align_case_id: str
    comparison: Comparison
    adopted: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()


def case_reference_for_get_case(case: Any) -> str:
    """The reference the default ``CaseAdapter.get_case`` resolves: the ``uuid``, else the pk.

    A host whose adapter resolves references another way names its cases with ``--case``.
    """
    value = getattr(case, "uuid", None)
    return str(value if value is not None else case.pk)


# -- which cases ------------------------------------------------------------------------------
def select_rows(case_refs: Sequence[str] = (), since: dt.datetime | None = None) -> list[InputRow]:
    """The rows to check: the given references (those the adapter cannot resolve are kept,
    the runner reports them), else every case the app holds Align state for.  ``since``
    keeps only cases whose Align state changed at or after it."""
    states = AlignCase.objects.all()
    if since is not None:
        states = states.filter(updated_at__gte=since)
    if not case_refs:
        return command_line_rows(
            case_reference_for_get_case(state.case)
            for state in states.select_related("case").order_by("pk").iterator()
        )
    rows = command_line_rows(case_refs)
    if since is None:
        return rows
    adapter = get_adapter()
    recent = set(states.values_list("case_id", flat=True))
    kept = []
    for row in rows:
        try:
            case = adapter.get_case(row.case_ref) if not row.problem else None
        except LookupError:
            case = None
        if case is None or case.pk in recent:
            kept.append(row)
    return kept


# -- the batch action -------------------------------------------------------------------------
class ReconcileAction(CaseAction):
    """Check one case against Align's find calls; with ``fix``, adopt the unambiguous ids."""

    name = "align_reconcile"
    would_send = "Align's find calls would be asked about the case."

    def __init__(self, *, fix: bool = False, user: Any = None) -> None:
        self.fix = fix
        self.user = user
        self.order_type = str(get_setting("PRIMARY_ORDER_TYPE"))
        self.found: dict[Any, CaseDrift] = {}
        self._lock = threading.Lock()

    def check(self, case: Any, comment: str, *, dry_run: bool) -> Plan:
        return Plan()  # every case is asked about; the asking is the (paced) send

    def send(
        self, case: Any, comment: str, plan: Plan, *, user: Any, client: AlignServiceClient
    ) -> RowOutcome:
        state = AlignCase.objects.filter(case=case).first()
        case_id = (state.align_case_id if state else "") or get_adapter().case_reference(case)
        call = "find_patients"
        try:
            patients = client.find_patients(case_id)
            call = "find_orders"
            orders = client.find_orders(case_id)
        except AlignError as error:
            note_call(call, error)
            logger.warning(
                "reconcile case=%s call=%s outcome=failed status=%s",
                case.pk,
                call,
                error.status_code,
            )
            return RowOutcome(
                FAILED, error.http_status, f"Could not ask Align ({type(error).__name__})."
            )
        note_call(call)
        comparison = compare(
            case_id=case_id,
            patient_here=state.patient_id if state else "",
            order_here=state.order_id if state else "",
            sales_order_patient=align_patient_id(case) or "",
            patients=patients,
            orders=orders,
            order_type=self.order_type,
        )
        drift = CaseDrift(case_id, comparison)
        if self.fix and not comparison.in_step:
            drift = self._adopt(case, state, case_id, comparison)
        with self._lock:
            self.found[case.pk] = drift
        return _outcome(drift)

    def _adopt(
        self, case: Any, state: AlignCase | None, case_id: str, comparison: Comparison
    ) -> CaseDrift:
        patient, order = comparison.adoption(PATIENT), comparison.adoption(ORDER)
        findings = comparison.findings
        if not (patient or order):
            return CaseDrift(case_id, comparison, remaining=tuple(f.message for f in findings))
        state = state or AlignCase.objects.for_case(case)
        now = timezone.now()
        updates: dict[str, Any] = {"updated_at": now}
        adopted = []
        if patient:
            updates["patient_id"] = patient
            adopted.append(f"patient {patient} (was {state.patient_id or 'none'})")
        if order:
            updates["order_id"] = order
            adopted.append(f"order {order} (was {state.order_id or 'none'})")
        if not state.align_case_id:
            updates["align_case_id"] = case_id
        with transaction.atomic():
            changed = (
                AlignCase.objects.filter(
                    pk=state.pk, patient_id=state.patient_id, order_id=state.order_id
                )
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .update(**updates)
            )
            if not changed:
                message = "Changed meanwhile, or being sent right now: not fixed; run again."
                return CaseDrift(
                    case_id,
                    comparison,
                    remaining=(*(f.message for f in findings), message),
                )
            text = "Adopted Align's " + " and ".join(adopted) + " (align_reconcile --fix)."
            record(case, ACTION, CaseEvent.SUCCEEDED, text, status_code=200, user=self.user)
        remaining = tuple(f.message for f in findings if not f.adopt)
        return CaseDrift(case_id, comparison, tuple(adopted), remaining)


def _outcome(drift: CaseDrift) -> RowOutcome:
    comparison = drift.comparison
    if comparison.in_step:
        return RowOutcome(IN_STEP, 200, "")
    messages = [f.message for f in comparison.findings]
    if drift.adopted and not drift.remaining:
        return RowOutcome(FIXED, 200, " ".join([*messages, "Adopted Align's ids."]))
    if drift.adopted:
        return RowOutcome(DRIFT, 200, "Partly fixed. " + " ".join(drift.remaining))
    return RowOutcome(DRIFT, 200, " ".join(drift.remaining or messages))


# -- running and reporting --------------------------------------------------------------------
@dataclass
class ReconcileReport:
    """The runner's report and, per case, what was found."""

    batch: BatchReport
    found: dict[Any, CaseDrift] = field(default_factory=dict)
    case_pks: dict[str, Any] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for result in self.batch.results if result.outcome == outcome)

    @property
    def drift_remains(self) -> bool:
        return self.count(DRIFT) > 0

    @property
    def unchecked(self) -> int:
        """Rows that could not be checked: failed (Align or the lookup), not run, or paused
        (outbound traffic is paused: the find calls are not made)."""
        return self.count(FAILED) + self.count(NOT_RUN) + self.count(PAUSED)

    def summary(self) -> str:
        parts = [
            f"{self.count(IN_STEP)} in step",
            f"{self.count(FIXED)} fixed",
            f"{self.count(DRIFT)} with drift",
            f"{self.count(FAILED)} failed",
        ]
        if self.count(DUPLICATE):
            parts.append(f"{self.count(DUPLICATE)} duplicates")
        if self.count(PAUSED):
            parts.append(f"{self.count(PAUSED)} paused (outbound traffic is paused)")
        if self.batch.interrupted:
            parts.append(f"{self.count(NOT_RUN)} not run (interrupted)")
        return (
            f"align_reconcile: {len(self.batch.results)} cases: {', '.join(parts)} "
            f"in {self.batch.elapsed:.1f} s"
        )

    def rows(self) -> Iterable[tuple[object, ...]]:
        """The report's rows, one per case checked (``REPORT_COLUMNS``)."""
        for result in self.batch.results:
            drift = None
            if result.outcome in (IN_STEP, DRIFT, FIXED):
                drift = self.found.get(self.case_pks.get(result.case_ref))
            yield _report_row(result, drift)


def _report_row(result: RowResult, drift: CaseDrift | None) -> tuple[object, ...]:
    status = "" if result.status is None else result.status
    if drift is None:
        return (result.case_ref, "", result.outcome, status, "", "", "", "", "", "", result.message)
    comparison = drift.comparison
    return (
        result.case_ref,
        drift.align_case_id,
        result.outcome,
        status,
        "; ".join(comparison.kinds),
        comparison.patient_here,
        " ".join(comparison.patients_at_align),
        comparison.order_here,
        " ".join(order.order_id for order in comparison.orders_at_align),
        "; ".join(drift.adopted),
        result.message,
    )


def reconcile(
    rows: list[InputRow],
    *,
    fix: bool = False,
    concurrency: int = 4,
    user: Any = None,
    on_result: Callable[[RowResult], None] | None = None,
    handle_signals: bool = False,
    client_factory: Callable[[], AlignServiceClient] = AlignServiceClient,
) -> ReconcileReport:
    """Check ``rows`` (see :func:`select_rows`) on the batch runner; fix when asked."""
    action = ReconcileAction(fix=fix, user=user)
    runner = BatchRunner(
        action,
        rows,
        concurrency=concurrency,
        user=user,
        on_result=on_result,
        handle_signals=handle_signals,
        client_factory=client_factory,
    )
    batch = runner.run()
    adapter = get_adapter()
    case_pks: dict[str, Any] = {}
    for result in batch.results:
        if result.outcome in (IN_STEP, DRIFT, FIXED):
            try:
                case_pks[result.case_ref] = adapter.get_case(result.case_ref).pk
            except LookupError:  # pragma: no cover - it resolved a moment ago
                continue
    return ReconcileReport(batch, dict(action.found), case_pks)
