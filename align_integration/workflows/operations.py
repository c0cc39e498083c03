"""Running one remote operation: check the kill switch, claim it, ask Align whether it
holds the result already (find first), call, record the outcome, and schedule a background
retry when trying again can help.

Every ``RemoteOperation`` row is written with its idempotency key before the first
attempt; each attempt appends a ``CaseEvent``.  Of Align's answers only ids are kept
(:data:`RESULT_KEYS`), and of its errors only a summary (status, stable code, count: see
:mod:`~align_integration.workflows.errors`); the vendor's own error text, redacted, goes
to the superuser-only ``vendor_detail``.  Outcomes (done, failed, retry scheduled, found
at Align, a conflict) are also given to the host as case notes
(``CaseAdapter.add_case_note``).

This engine is the one place every call to Align passes: while the switch
``align-outbound-paused`` is active, :func:`run_operation` raises
:class:`~align_integration.outbound.OutboundPaused` before touching the row, so due work
stays due with its attempts and schedule unchanged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.db import IntegrityError, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from align_integration import signals, telemetry
from align_integration.adapters import CaseAdapter, PatientData
from align_integration.client.errors import AlignError
from align_integration.client.retry import background_delay
from align_integration.conf import get_setting
from align_integration.models import CaseEvent, RemoteOperation
from align_integration.outbound import ensure_outbound_allowed
from align_integration.workflows.errors import (
    error_code,
    error_summary,
    looks_like_id,
)
from align_integration.workflows.reachability import note_call
from align_integration.workflows.redaction import vendor_detail
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record


def claim_seconds() -> int:
    """How long one run holds an operation (``OPERATION_CLAIM_SECONDS``)."""
    return int(get_setting("OPERATION_CLAIM_SECONDS"))


#: What ``RemoteOperation.result`` keeps of an answer: the ids (and the status word) the
#: flows read, never the rest of what the service sent back.
RESULT_KEYS = ("patientId", "orderId", "status", "uploaded")
MAX_RESULT_VALUE = 64


def kept_result(answer: Any) -> dict[str, Any]:
    """The ids of ``answer`` that the app needs: of :data:`RESULT_KEYS`, integers and
    id-shaped strings (letters, digits, ``._:-``) only."""
    if not isinstance(answer, dict):
        return {}
    kept: dict[str, Any] = {}
    for key in RESULT_KEYS:
        value = answer.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            kept[key] = value
        elif isinstance(value, str) and looks_like_id(value, MAX_RESULT_VALUE):
            kept[key] = value
    return kept


class OperationFailed(Exception):
    """An attempt failed; carries what the caller answers with."""

    def __init__(self, operation: RemoteOperation, status_code: int, errors: list[str]) -> None:
        super().__init__(f"{operation.kind} failed with {status_code}")
        self.operation = operation
        self.status_code = status_code
        self.errors = errors


class OperationBusy(Exception):
    """Another worker or request is running this operation right now."""


class ConflictAtAlign(Exception):
    """Align already holds more than one candidate for what this operation would create.

    Nothing is created: the operation fails (409) with this message, meant for staff,
    until the duplicate is resolved at Align.  The message names Align's ids only.
    """


@dataclass
class Attempt:
    """What one run of an operation needs: the call, how to find what Align holds already,
    and what to do once this run made the operation succeed.

    ``reconcile`` is asked before every attempt, the first included: ``None`` when Align
    holds nothing (then ``call`` runs), the answer to adopt when it holds exactly one,
    :class:`ConflictAtAlign` when it holds several.  ``on_success`` runs once, in the run
    that succeeded (not when the operation had succeeded before).
    """

    call: Callable[[str], dict[str, Any]]
    reconcile: Callable[[], dict[str, Any] | None] | None = None
    patient: PatientData | None = None
    label: str = ""
    on_success: Callable[[dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class OperationSpec:
    """One logical operation :func:`operations_for` finds or creates."""

    case: Any
    kind: str
    dedupe_key: str
    payload: dict[str, Any]


def _new_operation(spec: OperationSpec, user: Any) -> RemoteOperation:
    return RemoteOperation(
        case=spec.case,
        kind=spec.kind,
        dedupe_key=spec.dedupe_key,
        payload=spec.payload,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def operation_for(
    case: Any,
    kind: str,
    dedupe_key: str,
    *,
    payload: dict[str, Any] | None = None,
    user: Any = None,
) -> RemoteOperation:
    """The one row for this logical operation, created on first use."""
    try:
        return RemoteOperation.objects.get(dedupe_key=dedupe_key)
    except RemoteOperation.DoesNotExist:
        pass
    operation = _new_operation(OperationSpec(case, kind, dedupe_key, payload or {}), user)
    using = router.db_for_write(RemoteOperation)
    # In a caller's transaction a savepoint keeps it usable; in autocommit: one statement.
    nested = transaction.get_connection(using).in_atomic_block
    try:
        with transaction.atomic(using=using) if nested else contextlib.nullcontext():
            operation.save(force_insert=True, using=using)
        return operation
    except IntegrityError:  # made meanwhile by another run
        return RemoteOperation.objects.get(dedupe_key=dedupe_key)


#: Keys per query of :func:`operations_for` (well under every database's parameter limit).
BULK_CHUNK = 500


def operations_for(specs: list[OperationSpec], *, user: Any = None) -> dict[str, RemoteOperation]:
    """:func:`operation_for` of many at once, by dedupe key: the stored rows, and the rows
    not stored yet created (a few queries per :data:`BULK_CHUNK` instead of two each)."""
    found: dict[str, RemoteOperation] = {}
    for start in range(0, len(specs), BULK_CHUNK):
        chunk = specs[start : start + BULK_CHUNK]
        keys = [spec.dedupe_key for spec in chunk]
        found.update(
            (operation.dedupe_key, operation)
            for operation in RemoteOperation.objects.filter(dedupe_key__in=keys)
        )
        missing = [spec for spec in chunk if spec.dedupe_key not in found]
        if not missing:
            continue
        RemoteOperation.objects.bulk_create(
            [_new_operation(spec, user) for spec in missing],
            ignore_conflicts=True,  # made meanwhile by another run: read below
        )
        found.update(
            (operation.dedupe_key, operation)
            for operation in RemoteOperation.objects.filter(
                dedupe_key__in=[spec.dedupe_key for spec in missing]
            )
        )
    return found


def _claim(operation: RemoteOperation, *, count_attempt: bool, again: bool = True) -> bool | None:
    """Take ``operation`` for this run: True when taken, False when it succeeded meanwhile
    (nothing to do), ``None`` when another run holds it.

    One compare-and-set: the row is taken only while nobody holds it and its attempts are
    those read, so the copy in hand is the stored row (every attempt of another run
    changes its count) and need not be read again.  ``count_attempt`` counts this run's
    attempt in the same statement.  When the row changed since it was read, it is read
    again and taken as stored, once.
    """
    now = timezone.now()
    until = now + dt.timedelta(seconds=claim_seconds())
    changes: dict[str, Any] = {
        "claimed_until": until,
        "state": RemoteOperation.IN_PROGRESS,
        "updated_at": now,
    }
    if count_attempt:
        changes["attempts"] = F("attempts") + 1
    claimed = (
        RemoteOperation.objects.filter(pk=operation.pk, attempts=operation.attempts)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .exclude(state=RemoteOperation.SUCCEEDED)
        .update(**changes)
    )
    if claimed:
        operation.claimed_until = until
        operation.state = RemoteOperation.IN_PROGRESS
        operation.updated_at = now
        operation.attempts += int(count_attempt)
        return True
    operation.refresh_from_db()
    if operation.state == RemoteOperation.SUCCEEDED:
        return False
    held = operation.claimed_until is not None and operation.claimed_until >= now
    if again and not held:  # changed since read (an attempt elsewhere): take it as stored
        return _claim(operation, count_attempt=count_attempt, again=False)
    return None


def _one_commit() -> Any:
    """The writes of one step in one transaction (one commit, not one per row); inside a
    caller's transaction, part of it (no savepoint: an error there dooms it anyway)."""
    return transaction.atomic(using=router.db_for_write(RemoteOperation), savepoint=False)


def _record_attempt(operation: RemoteOperation, label: str, user: Any) -> None:
    record(
        operation.case,
        operation.kind,
        CaseEvent.STARTED,
        f"{label}: attempt {operation.attempts}.",
        operation=operation,
        user=user,
    )


def run_operation(
    operation: RemoteOperation, attempt: Attempt, *, user: Any = None, background: bool = True
) -> dict[str, Any]:
    """Run ``operation`` once (urllib3 retries inside); return Align's answer.

    Raises :class:`OperationFailed` on failure, after recording it and, when the failure
    is transient and attempts remain, scheduling a background retry;
    :class:`OperationBusy` while another run holds it; and
    :class:`~align_integration.outbound.OutboundPaused`, changing nothing, while outbound
    traffic is paused.
    """
    label = attempt.label or operation.get_kind_display()
    if operation.state == RemoteOperation.SUCCEEDED:
        return operation.result
    ensure_outbound_allowed(operation=operation)
    state_before = operation.state
    counted = attempt.reconcile is None  # else counted once Align is found to hold nothing
    with _one_commit():  # the claim and, when counted, its "attempt N" entry
        taken = _claim(operation, count_attempt=counted)
        if taken and counted:
            _record_attempt(operation, label, user)
    if taken is None:
        raise OperationBusy(operation.kind)
    if not taken:  # it succeeded meanwhile
        return operation.result

    if not counted:
        try:
            found = attempt.reconcile() if attempt.reconcile is not None else None
        except AlignError as error:
            _fail(operation, error, attempt, label, user, background)
        except ConflictAtAlign as conflict:
            _conflict(operation, str(conflict), label, user)
        except ImproperlyConfigured:
            _unclaim(operation, state_before, counted=False)
            raise
        if found:
            if operation.attempts:
                message = f"{label}: found at Align from an earlier attempt; not sent again."
            else:
                message = f"{label}: Align holds it already (found by caseId); adopted, not sent."
            return _succeed(operation, found, attempt, message, user)
        with _one_commit():
            operation.attempts += 1
            operation.save(update_fields=["attempts", "updated_at"])
            _record_attempt(operation, label, user)
    with telemetry.span(
        "align.operation",
        kind=operation.kind,
        operation_id=operation.pk,
        attempt=operation.attempts,
    ) as traced:
        try:
            answer = attempt.call(str(operation.idempotency_key))
        except AlignError as error:
            telemetry.set_attribute(traced, "outcome", "failed")
            _fail(operation, error, attempt, label, user, background)
        except ImproperlyConfigured:
            _unclaim(operation, state_before, counted=True)
            raise
        telemetry.set_attribute(traced, "outcome", "succeeded")
    note_call(operation.kind)
    return _succeed(operation, answer, attempt, f"{label}: done.", user)


#: What an attempt's outcome writes (a run holds the row: nothing else changes it meanwhile).
OUTCOME_FIELDS = [
    "state",
    "next_attempt_at",
    "claimed_until",
    "last_status_code",
    "last_error_code",
    "last_errors",
    "vendor_detail",
    "updated_at",
]


def _unclaim(operation: RemoteOperation, state: str, *, counted: bool) -> None:
    """Hand the operation back as it was: a settings error is no attempt at Align."""
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=state, claimed_until=None, attempts=F("attempts") - int(counted)
    )
    operation.refresh_from_db()


def _succeed(
    operation: RemoteOperation, answer: dict[str, Any], attempt: Attempt, message: str, user: Any
) -> dict[str, Any]:
    """Record the success (the row and its timeline entry in one commit), then run the
    attempt's ``on_success``."""
    answer = kept_result(answer)
    operation.state = RemoteOperation.SUCCEEDED
    operation.result = answer
    operation.ambiguous = False
    operation.last_status_code = 200
    operation.last_error_code = ""
    operation.last_errors = []
    operation.vendor_detail = ""
    operation.next_attempt_at = None
    operation.claimed_until = None
    operation.finished_at = timezone.now()
    with _one_commit():
        operation.save(update_fields=[*OUTCOME_FIELDS, "ambiguous", "result", "finished_at"])
        record(
            operation.case,
            operation.kind,
            CaseEvent.SUCCEEDED,
            message,
            status_code=200,
            operation=operation,
            user=user,
            note=True,
        )
    if attempt.on_success is not None:
        attempt.on_success(answer)
    return answer


def _conflict(operation: RemoteOperation, message: str, label: str, user: Any) -> NoReturn:
    """Park the operation as failed (409): Align holds several candidates, none is taken."""
    operation.state = RemoteOperation.FAILED
    operation.next_attempt_at = None
    operation.claimed_until = None
    operation.last_status_code = 409
    operation.last_error_code = "conflict"
    operation.last_errors = [message]
    operation.vendor_detail = ""
    with _one_commit():
        operation.save(update_fields=OUTCOME_FIELDS)
        record(
            operation.case,
            operation.kind,
            CaseEvent.FAILED,
            f"{label} not sent: {message}",
            status_code=409,
            operation=operation,
            user=user,
            note=True,
        )
    raise OperationFailed(operation, 409, [message])


def _fail(
    operation: RemoteOperation,
    error: AlignError,
    attempt: Attempt,
    label: str,
    user: Any,
    background: bool,
) -> NoReturn:
    note_call(operation.kind, error)
    summary = error_summary(error)
    operation.ambiguous = operation.ambiguous or error.ambiguous
    operation.last_status_code = error.status_code
    operation.last_error_code = error_code(error)
    operation.last_errors = [summary]
    operation.vendor_detail = vendor_detail(error.errors, attempt.patient)
    operation.claimed_until = None
    max_attempts = int(get_setting("OPERATION_MAX_ATTEMPTS"))
    if background and error.retryable and operation.attempts < max_attempts:
        delay = background_delay(
            max(1, operation.attempts),
            base=float(get_setting("OPERATION_BACKOFF_BASE")),
            cap=float(get_setting("OPERATION_BACKOFF_MAX")),
            retry_after=error.retry_after,
        )
        operation.state = RemoteOperation.RETRY_SCHEDULED
        operation.next_attempt_at = timezone.now() + dt.timedelta(seconds=delay)
        outcome = CaseEvent.RETRY_SCHEDULED
        message = f"{label} failed ({summary}); retry in {int(delay)} s."
    else:
        operation.state = RemoteOperation.FAILED
        operation.next_attempt_at = None
        outcome = CaseEvent.FAILED
        message = f"{label} failed: {summary}."
    with _one_commit():
        operation.save(update_fields=[*OUTCOME_FIELDS, "ambiguous"])
        record(
            operation.case,
            operation.kind,
            outcome,
            message,
            status_code=error.http_status,
            request_id=error.request_id,
            operation=operation,
            user=user,
            note=True,
        )
    if operation.state == RemoteOperation.RETRY_SCHEDULED:
        announce_retry(operation)
    raise OperationFailed(operation, error.http_status, [f"{label}: {summary}"])


def announce_retry(operation: RemoteOperation) -> None:
    """Send ``operation_retry_scheduled`` once the transaction commits.

    The task integration (``align_integration.tasks``) enqueues the retry for its
    ``next_attempt_at``; without it, ``align_worker`` finds the row by that time anyway.
    """
    transaction.on_commit(
        lambda: signals.operation_retry_scheduled.send(sender=RemoteOperation, operation=operation)
    )


def schedule_when_resumed(operation: RemoteOperation) -> bool:
    """Make ``operation`` due now, so that it runs once outbound traffic is resumed.

    For work asked for while the kill switch is on by a path that cannot answer "try
    later" (a signal receiver): the worker (or a task) runs it when the switch is off.
    False when it succeeded or is running already.
    """
    scheduled = (
        RemoteOperation.objects.filter(pk=operation.pk)
        .exclude(state__in=[RemoteOperation.SUCCEEDED, RemoteOperation.IN_PROGRESS])
        .update(state=RemoteOperation.RETRY_SCHEDULED, next_attempt_at=timezone.now())
    )
    operation.refresh_from_db()
    if scheduled:
        announce_retry(operation)
    return bool(scheduled)


PATIENT_MISSING = "The case's patient record is missing or incomplete."


def patient_or_refusal(
    case: Any, adapter: CaseAdapter, kind: str, user: Any = None
) -> PatientData | AlignResult:
    """The case's patient, or a recorded 400 result when the host has no usable record."""
    try:
        return adapter.patient(case)
    except (AttributeError, ObjectDoesNotExist):
        record(case, kind, CaseEvent.FAILED, PATIENT_MISSING, status_code=400, user=user)
        return AlignResult(400, [PATIENT_MISSING])


def result_of(send: Callable[[], Any], *, busy: str) -> AlignResult:
    """Run ``send`` (one or more operations) and turn its outcome into a flow result:
    success, 409 with ``busy`` when another run holds an operation, or the failure's
    status and errors."""
    try:
        send()
    except OperationBusy:
        return AlignResult(409, [busy])
    except OperationFailed as failure:
        return AlignResult(failure.status_code, failure.errors)
    return AlignResult.success()
