"""ClinCheck actions: accept (with the newest acceptance screenshot) and revision requests.

Each is a ``RemoteOperation``: written with its idempotency key before the first attempt,
retried in the background on transient failures (never doubled), parked as failed and
visible on the timeline and in the admin when it fails for good.  The accept sends the
screenshot's ``vault_id`` and ``external_key`` as chosen when the operation was made (kept
in its payload), wherever the file lives.  Once Align accepted, ``clincheck_accepted`` or
``revision_requested`` is sent (on commit).
"""

from __future__ import annotations

import hashlib
from typing import Any

import waffle
from django.db import transaction

from align_integration import signals
from align_integration.adapters import get_adapter
from align_integration.client.service import AlignServiceClient
from align_integration.models import AlignCase, CaseAsset, CaseEvent, RemoteOperation
from align_integration.outbound import OutboundPaused, outbound_paused
from align_integration.workflows.operations import (
    BULK_CHUNK,
    Attempt,
    OperationSpec,
    operation_for,
    operations_for,
    patient_or_refusal,
    result_of,
    run_operation,
    schedule_when_resumed,
)
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record, user_of

APPROVE = "approve"
REVISE = "revise"
ACTIONS = (APPROVE, REVISE)
FLAG = "set-align-order-status"
MAX_COMMENT_LENGTH = 5000


def _acceptance_screenshots() -> Any:
    """Current acceptance screenshots, the newest first."""
    return (
        CaseAsset.objects.current()
        .filter(kind=CaseAsset.CCACCEPTSCREEN)
        .order_by("-date_created", "-pk")
    )


def latest_acceptance_screenshot(case: Any) -> CaseAsset | None:
    return _acceptance_screenshots().filter(case=case).first()


def latest_acceptance_screenshots(cases: list[Any]) -> dict[Any, CaseAsset]:
    """:func:`latest_acceptance_screenshot` of many cases at once, by case pk."""
    newest: dict[Any, CaseAsset] = {}
    for start in range(0, len(cases), BULK_CHUNK):
        chunk = [case.pk for case in cases[start : start + BULK_CHUNK]]
        for screenshot in _acceptance_screenshots().filter(case__in=chunk):
            newest.setdefault(screenshot.case_id, screenshot)
    return newest


def _accept_spec(case: Any, screenshot: CaseAsset) -> OperationSpec:
    return OperationSpec(
        case,
        RemoteOperation.CLINCHECK_ACCEPT,
        f"clincheck_accept:{case.pk}:{screenshot.pk}",
        {
            "asset_id": screenshot.pk,
            "vault_id": screenshot.vault_id,
            "external_key": screenshot.external_key,
        },
    )


def prepare_accepts(
    accepts: list[tuple[Any, CaseAsset]], user: Any = None
) -> dict[Any, RemoteOperation]:
    """The accept operation of each (case, its newest screenshot), by case pk, made in bulk
    where missing: :func:`prepare_operation` of many cases at once."""
    specs = [_accept_spec(case, screenshot) for case, screenshot in accepts]
    operations = operations_for(specs, user=user)
    return {spec.case.pk: operations[spec.dedupe_key] for spec in specs}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plan_marker(case: Any) -> str:
    state = AlignCase.objects.filter(case=case).first()
    if state is None:
        return "none"
    return f"{state.treatment_plan_id or 'none'}.{state.treatment_plan_version or 0}"


def prepare_operation(
    case: Any,
    action: str,
    comment: str | None = None,
    user: Any = None,
    *,
    screenshot: CaseAsset | None = None,
) -> RemoteOperation:
    """The operation row for a ClinCheck action; raises ``ValueError`` with a reason.

    ``screenshot``: the case's newest acceptance screenshot when the caller has it (an
    accept then sends it; otherwise it is looked up here).
    """
    if action == APPROVE:
        screenshot = screenshot or latest_acceptance_screenshot(case)
        if screenshot is None:
            raise ValueError("No acceptance screenshot is on file for this case.")
        spec = _accept_spec(case, screenshot)
        return operation_for(case, spec.kind, spec.dedupe_key, payload=spec.payload, user=user)
    if action == REVISE:
        text = (comment or "").strip()
        if not text:
            raise ValueError("A revision request needs a comment.")
        if len(text) > MAX_COMMENT_LENGTH:
            raise ValueError(f"The comment is longer than {MAX_COMMENT_LENGTH} characters.")
        if "\x00" in text or not _encodable(text):
            raise ValueError("The comment contains characters that cannot be stored.")
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        return operation_for(
            case,
            RemoteOperation.CLINCHECK_REVISE,
            f"clincheck_revise:{case.pk}:{_plan_marker(case)}:{digest}",
            payload={"comments": text},
            user=user,
        )
    raise ValueError(f"Unknown action; expected one of {', '.join(ACTIONS)}.")


def perform_clincheck(
    operation: RemoteOperation,
    *,
    user: Any = None,
    client: AlignServiceClient | None = None,
    background: bool = True,
    screenshot: CaseAsset | None = None,
) -> AlignResult:
    """Send (or resume) one ClinCheck operation.

    ``screenshot``: the acceptance screenshot the caller just made the operation with,
    which then need not be read again; a resumed accept reads its own (it may be gone).
    """
    case = operation.case
    adapter = get_adapter()
    client = client or AlignServiceClient()
    patient = patient_or_refusal(case, adapter, operation.kind, user)
    if isinstance(patient, AlignResult):
        return patient
    case_id = adapter.case_reference(case)
    if operation.kind == RemoteOperation.CLINCHECK_ACCEPT:
        payload = operation.payload
        if screenshot is None or screenshot.pk != payload.get("asset_id"):
            screenshot = CaseAsset.objects.filter(pk=payload.get("asset_id")).first()
        if screenshot is None:
            message = "The acceptance screenshot of this operation no longer exists."
            record(case, operation.kind, CaseEvent.FAILED, message, status_code=409, user=user)
            return AlignResult(409, [message])
        # The ids chosen when the operation was made (older rows: the screenshot's own).
        vault_id = str(payload.get("vault_id", screenshot.vault_id))
        external_key = str(payload.get("external_key", screenshot.external_key))

        def call(key: str) -> dict[str, Any]:
            return client.clincheck_accept(
                case_id=case_id,
                mrn=patient.mrn,
                vault_id=vault_id,
                external_key=external_key,
                idempotency_key=key,
            )

        def announce(answer: dict[str, Any]) -> None:
            transaction.on_commit(
                lambda: signals.clincheck_accepted.send(sender=RemoteOperation, case=case)
            )

        label = f"ClinCheck accept (screenshot asset {screenshot.pk})"
    else:
        comments = str(operation.payload.get("comments", ""))

        def call(key: str) -> dict[str, Any]:
            return client.clincheck_revise(
                case_id=case_id, mrn=patient.mrn, comments=comments, idempotency_key=key
            )

        def announce(answer: dict[str, Any]) -> None:
            # A revision asked for: the plan under review no longer awaits the provider.
            AlignCase.objects.filter(case=case).update(awaiting_provider_review=False)
            transaction.on_commit(
                lambda: signals.revision_requested.send(
                    sender=RemoteOperation, case=case, comment=comments
                )
            )

        label = "ClinCheck revision request"
    return result_of(
        lambda: run_operation(
            operation,
            Attempt(call=call, patient=patient, label=label, on_success=announce),
            user=user,
            background=background,
        ),
        busy="This ClinCheck action is being sent right now.",
    )


def set_case_status(
    request_or_user: Any,
    case: Any,
    action: str,
    comment: str | None = None,
    *,
    client: AlignServiceClient | None = None,
) -> AlignResult:
    """ClinCheck ``approve`` (with the newest screenshot) or ``revise`` (with ``comment``).

    Raises :class:`~align_integration.outbound.OutboundPaused` (carrying the operation,
    which was not sent) while outbound traffic is paused.
    """
    user = user_of(request_or_user)
    screenshot = latest_acceptance_screenshot(case) if action == APPROVE else None
    try:
        operation = prepare_operation(case, action, comment, user, screenshot=screenshot)
    except ValueError as problem:
        record(
            case,
            f"clincheck_{action}"[:64],
            CaseEvent.FAILED,
            str(problem),
            status_code=400,
            user=user,
            note=True,
        )
        return AlignResult(400, [str(problem)])
    if operation.state == RemoteOperation.SUCCEEDED:
        record(
            case,
            operation.kind,
            CaseEvent.SKIPPED,
            "Already sent to Align; not sent again.",
            operation=operation,
            user=user,
        )
        return AlignResult.success()
    if outbound_paused():
        record(
            case,
            operation.kind,
            CaseEvent.SKIPPED,
            "Not sent: outbound traffic to Align is paused (switch align-outbound-paused).",
            status_code=503,
            operation=operation,
            user=user,
            note=True,
        )
        raise OutboundPaused(operation=operation)
    return perform_clincheck(operation, user=user, client=client, screenshot=screenshot)


def accept_when_aligners_purchased(case: Any, *, user: Any = None, request: Any = None) -> None:
    """The purchase hook: ClinCheck accept for an Align case, behind the waffle flag.

    While outbound traffic is paused the accept is not sent but scheduled: it is due at
    once, so the worker (or a task) sends it when the switch is off.  Never raises for that.
    """
    adapter = get_adapter()
    if not adapter.lab_is_align(case):
        return
    active = waffle.flag_is_active(request, FLAG) if request is not None else _flag_on()
    if not active:
        record(
            case,
            "clincheck_accept",
            CaseEvent.SKIPPED,
            f"Aligners purchased, but the '{FLAG}' flag is off: accept not sent.",
            user=user,
        )
        return
    try:
        set_case_status(user, case, APPROVE)
    except OutboundPaused as paused:
        if paused.operation is not None and schedule_when_resumed(paused.operation):
            record(
                case,
                "clincheck_accept",
                CaseEvent.INFO,
                "Aligners purchased while outbound traffic is paused: the ClinCheck accept "
                "is kept and sent once the switch is off.",
                operation=paused.operation,
                user=user,
                note=True,
            )


def _flag_on() -> bool:
    flag = waffle.get_waffle_flag_model().get(FLAG)
    return bool(flag.pk and flag.everyone)
