"""Running one remote operation: claim it, reconcile if the last try was ambiguous, call,
record the outcome, and schedule a background retry when trying again can help.

Every ``RemoteOperation`` row is written with its idempotency key before the first
attempt; each attempt appends a ``CaseEvent``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from align_integration import signals
from align_integration.adapters import CaseAdapter, PatientData
from align_integration.client.errors import AlignError
from align_integration.client.retry import background_delay
from align_integration.conf import get_setting
from align_integration.models import CaseEvent, RemoteOperation
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record, redact


def claim_seconds() -> int:
    """How long one run holds an operation (``OPERATION_CLAIM_SECONDS``)."""
    return int(get_setting("OPERATION_CLAIM_SECONDS"))


class OperationFailed(Exception):
    """An attempt failed; carries what the caller answers with."""

    def __init__(self, operation: RemoteOperation, status_code: int, errors: list[str]) -> None:
        super().__init__(f"{operation.kind} failed with {status_code}")
        self.operation = operation
        self.status_code = status_code
        self.errors = errors


class OperationBusy(Exception):
    """Another worker or request is running this operation right now."""


@dataclass
class Attempt:
    """What one run of an operation needs: the call, and how to find an earlier success."""

    call: Callable[[str], dict[str, Any]]
    reconcile: Callable[[], dict[str, Any] | None] | None = None
    patient: PatientData | None = None
    label: str = ""


def operation_for(
    case: Any,
    kind: str,
    dedupe_key: str,
    *,
    payload: dict[str, Any] | None = None,
    user: Any = None,
) -> RemoteOperation:
    """The one row for this logical operation, created on first use."""
    existing = RemoteOperation.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return RemoteOperation.objects.create(
                case=case,
                kind=kind,
                dedupe_key=dedupe_key,
                payload=payload or {},
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:
        return RemoteOperation.objects.get(dedupe_key=dedupe_key)


def _claim(operation: RemoteOperation) -> bool:
    """Take ``operation`` for this run; False when it succeeded meanwhile (nothing to do)."""
    now = timezone.now()
    claimed = (
        RemoteOperation.objects.filter(pk=operation.pk)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .exclude(state=RemoteOperation.SUCCEEDED)
        .update(
            claimed_until=now + dt.timedelta(seconds=claim_seconds()),
            state=RemoteOperation.IN_PROGRESS,
        )
    )
    if not claimed:
        operation.refresh_from_db()
        if operation.state == RemoteOperation.SUCCEEDED:
            return False
        raise OperationBusy(operation.kind)
    operation.refresh_from_db()
    return True


def run_operation(
    operation: RemoteOperation, attempt: Attempt, *, user: Any = None, background: bool = True
) -> dict[str, Any]:
    """Run ``operation`` once (urllib3 retries inside); return Align's answer.

    Raises :class:`OperationFailed` on failure, after recording it and, when the failure
    is transient and attempts remain, scheduling a background retry.
    """
    label = attempt.label or operation.get_kind_display()
    if operation.state == RemoteOperation.SUCCEEDED:
        return operation.result
    if not _claim(operation):  # it succeeded meanwhile
        return operation.result

    if operation.attempts and attempt.reconcile is not None:
        try:
            found = attempt.reconcile()
        except AlignError as error:
            _fail(operation, error, attempt, label, user, background)
        if found:
            record(
                operation.case,
                operation.kind,
                CaseEvent.SUCCEEDED,
                f"{label}: found at Align from an earlier attempt; not sent again.",
                status_code=200,
                operation=operation,
                user=user,
            )
            return _succeed(operation, found)

    operation.attempts += 1
    operation.save(update_fields=["attempts", "updated_at"])
    record(
        operation.case,
        operation.kind,
        CaseEvent.STARTED,
        f"{label}: attempt {operation.attempts}.",
        operation=operation,
        user=user,
    )
    try:
        answer = attempt.call(str(operation.idempotency_key))
    except AlignError as error:
        _fail(operation, error, attempt, label, user, background)
    record(
        operation.case,
        operation.kind,
        CaseEvent.SUCCEEDED,
        f"{label}: done.",
        status_code=200,
        operation=operation,
        user=user,
    )
    return _succeed(operation, answer)


def _succeed(operation: RemoteOperation, answer: dict[str, Any]) -> dict[str, Any]:
    operation.state = RemoteOperation.SUCCEEDED
    operation.result = answer
    operation.ambiguous = False
    operation.last_status_code = 200
    operation.last_errors = []
    operation.next_attempt_at = None
    operation.claimed_until = None
    operation.finished_at = timezone.now()
    operation.save()
    return answer


def _fail(
    operation: RemoteOperation,
    error: AlignError,
    attempt: Attempt,
    label: str,
    user: Any,
    background: bool,
) -> NoReturn:
    errors = redact([str(error), *error.errors], attempt.patient)
    operation.ambiguous = operation.ambiguous or error.ambiguous
    operation.last_status_code = error.status_code
    operation.last_errors = errors
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
        message = f"{label} failed ({'; '.join(errors)}); retry in {int(delay)} s."
    else:
        operation.state = RemoteOperation.FAILED
        operation.next_attempt_at = None
        outcome = CaseEvent.FAILED
        message = f"{label} failed: {'; '.join(errors)}"
    operation.save()
    record(
        operation.case,
        operation.kind,
        outcome,
        message,
        status_code=error.http_status,
        request_id=error.request_id,
        operation=operation,
        user=user,
    )
    if operation.state == RemoteOperation.RETRY_SCHEDULED:
        announce_retry(operation)
    raise OperationFailed(operation, error.http_status, errors)


def announce_retry(operation: RemoteOperation) -> None:
    """Send ``operation_retry_scheduled`` once the transaction commits.

    The task integration (``align_integration.tasks``) enqueues the retry for its
    ``next_attempt_at``; without it, ``align_worker`` finds the row by that time anyway.
    """
    transaction.on_commit(
        lambda: signals.operation_retry_scheduled.send(sender=RemoteOperation, operation=operation)
    )


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
