"""The upload step: ask Align's service to fetch the case's current scan files.

One module for the three callers that upload: the order flow's last step, the batch
command ``align_upload_assets`` and the worker's retry.  They share one dedupe key per
case and file set, built from ``CaseAdapter.stl_files(case)``, so an upload done by one of
them counts as done for the others, and a changed file set is a new upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from align_integration.adapters import AssetRef, CaseAdapter, PatientData, get_adapter
from align_integration.cases import align_patient_id
from align_integration.client.service import AlignServiceClient
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.outbound import OutboundPaused, outbound_paused
from align_integration.workflows.operations import (
    Attempt,
    operation_for,
    patient_or_refusal,
    result_of,
    run_operation,
)
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record

NO_FILES = "The case has no STL files to upload."
NO_PATIENT = "The case has no Align patient yet; send the case to Align first."


def upload_dedupe_key(case: Any, files: Sequence[AssetRef] | None = None) -> str:
    """The upload operation's key for the case's current scan files.

    The fingerprint covers each file's ids (its vault id and external key, else its name),
    so the same files give the same key whichever caller asks.
    """
    if files is None:
        files = get_adapter().stl_files(case)
    identities = sorted(f"{ref.vault_id}|{ref.external_key}|{ref.name}" for ref in files)
    fingerprint = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:16]
    return f"upload_assets:{case.pk}:{fingerprint}"


def upload_label(count: int) -> str:
    return f"Upload assets ({count} STL files)"


def upload_operation(case: Any, *, user: Any = None) -> RemoteOperation | None:
    """The upload operation for the case's current scan files (``None`` when it has none)."""
    files = get_adapter().stl_files(case)
    if not files:
        return None
    return operation_for(
        case,
        RemoteOperation.UPLOAD_ASSETS,
        upload_dedupe_key(case, files),
        payload={"file_count": len(files)},
        user=user,
    )


def is_current(operation: RemoteOperation) -> bool:
    """False when the case's files changed since ``operation`` was made (it is stale)."""
    return upload_dedupe_key(operation.case) == operation.dedupe_key


def case_patient_id(case: Any) -> str:
    """Align's patient id for the case: ours from sending it, else the newest sales order's."""
    state = AlignCase.objects.filter(case=case).first()
    return (state.patient_id if state else "") or align_patient_id(case) or ""


def send_upload(
    operation: RemoteOperation,
    *,
    patient_id: str,
    patient: PatientData,
    adapter: CaseAdapter,
    client: AlignServiceClient,
    user: Any = None,
) -> None:
    """Run ``operation`` (raises ``OperationFailed``/``OperationBusy``), then mark the case."""
    case = operation.case
    count = int(operation.payload.get("file_count") or 0)
    run_operation(
        operation,
        Attempt(
            call=lambda key: client.upload_assets(
                patient_id=patient_id,
                mrn=patient.mrn,
                case_id=adapter.case_reference(case),
                idempotency_key=key,
            ),
            patient=patient,
            label=upload_label(count),
        ),
        user=user,
    )
    AlignCase.objects.filter(case=case, assets_uploaded_at__isnull=True).update(
        assets_uploaded_at=timezone.now()
    )


def perform_upload(
    operation: RemoteOperation, *, user: Any = None, client: AlignServiceClient | None = None
) -> AlignResult:
    """Send (or resume) one upload operation of a case that has an Align patient."""
    case = operation.case
    adapter = get_adapter()
    patient = patient_or_refusal(case, adapter, operation.kind, user)
    if isinstance(patient, AlignResult):
        return patient
    return result_of(
        lambda: send_upload(
            operation,
            patient_id=case_patient_id(case),
            patient=patient,
            adapter=adapter,
            client=client or AlignServiceClient(),
            user=user,
        ),
        busy="This upload is being sent right now.",
    )


def upload_case_assets(
    case: Any, user: Any = None, client: AlignServiceClient | None = None
) -> AlignResult:
    """Upload the case's current scan files for a case that already has an Align patient.

    Once per file set: a second call for the same files answers success without sending.
    Raises :class:`~align_integration.outbound.OutboundPaused` while outbound traffic is
    paused.
    """
    if not case_patient_id(case):
        record(case, RemoteOperation.UPLOAD_ASSETS, CaseEvent.FAILED, NO_PATIENT, status_code=409)
        return AlignResult(409, [NO_PATIENT])
    operation = upload_operation(case, user=user)
    if operation is None:
        record(case, RemoteOperation.UPLOAD_ASSETS, CaseEvent.FAILED, NO_FILES, status_code=400)
        return AlignResult(400, [NO_FILES])
    if operation.state == RemoteOperation.SUCCEEDED:
        return AlignResult.success()
    if outbound_paused():
        record(
            case,
            RemoteOperation.UPLOAD_ASSETS,
            CaseEvent.SKIPPED,
            "Not sent: outbound traffic to Align is paused (switch align-outbound-paused).",
            status_code=503,
            operation=operation,
        )
        raise OutboundPaused(operation=operation)
    return perform_upload(operation, user=user, client=client)
