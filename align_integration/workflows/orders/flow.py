"""Sending a case to Align: create patient -> create primary order (IAS) -> upload assets.

Resumable: the Align ids are kept on ``AlignCase`` and every remote step is a
``RemoteOperation`` with a stored idempotency key, so running again after any failure
starts at the failed step and never creates a second patient or order, also when the
failure was ambiguous (the find calls are asked first).  A lease on ``AlignCase`` keeps
two runs for one case from acting at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from align_integration import signals
from align_integration.adapters import (
    CaseAdapter,
    PatientData,
    get_adapter,
    iso_date,
    normalize_gender,
)
from align_integration.cases import can_send_to_align
from align_integration.client.errors import AlignNotFound, AlignRequestRejected
from align_integration.client.service import AlignServiceClient
from align_integration.conf import get_setting
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.workflows.operations import (
    Attempt,
    OperationBusy,
    OperationFailed,
    claim_seconds,
    operation_for,
    patient_or_refusal,
    run_operation,
)
from align_integration.workflows.orders.uploads import NO_FILES, send_upload, upload_operation
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record, user_of

ACTION = "initiate_order"


def align_state(case: Any) -> AlignCase:
    """The ``AlignCase`` row of ``case``, created on first use (safe under races)."""
    return AlignCase.objects.for_case(case)


def _claim_case(state: AlignCase) -> str:
    """Lease the case for one send.  The lease lasts as long as an operation's claim and is
    renewed at each step, so a crashed send's case is free again by the time a worker
    takes its operation over."""
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = (
        AlignCase.objects.filter(pk=state.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_token=token, lease_until=now + dt.timedelta(seconds=claim_seconds()))
    )
    return token if claimed else ""


def _renew_case(state: AlignCase, token: str) -> None:
    AlignCase.objects.filter(pk=state.pk, lease_token=token).update(
        lease_until=timezone.now() + dt.timedelta(seconds=claim_seconds())
    )


def _release_case(state: AlignCase, token: str) -> None:
    AlignCase.objects.filter(pk=state.pk, lease_token=token).update(
        lease_token="", lease_until=None
    )


def _patient_problems(patient: PatientData) -> list[str]:
    """Field names (never values) that Align will refuse."""
    missing = [
        label
        for label, value in (
            ("first name", patient.first_name),
            ("last name", patient.last_name),
            ("date of birth", iso_date(patient.date_of_birth)),
            ("medical record number", patient.mrn),
        )
        if not value
    ]
    return [f"The patient's {label} is missing." for label in missing]


class NothingToUpload(Exception):
    """The case's scan files went away between the eligibility check and the upload."""


class OrderSender:
    """The three steps for one case.  Use :func:`initiate_align_order`."""

    def __init__(
        self,
        case: Any,
        user: Any,
        client: AlignServiceClient,
        adapter: CaseAdapter,
        patient: PatientData,
    ) -> None:
        self.case = case
        self.user = user
        self.client = client
        self.adapter = adapter
        self.case_id = adapter.case_reference(case)
        self.patient = patient

    def create_patient(self, state: AlignCase) -> str:
        if state.patient_id:
            return state.patient_id
        patient = self.patient
        gender = normalize_gender(patient.gender)
        operation = operation_for(
            self.case,
            RemoteOperation.CREATE_PATIENT,
            f"create_patient:{self.case.pk}",
            user=self.user,
        )
        if gender not in ("M", "F"):
            gender = get_setting("DEFAULT_GENDER")
            if operation.attempts == 0:  # said once, before the first attempt
                record(
                    self.case,
                    "gender_defaulted",
                    CaseEvent.INFO,
                    f"Patient gender is unknown; sent to Align as {gender} because Align "
                    "accepts only M or F. Set the gender and correct it at Align if needed.",
                    user=self.user,
                )
        body = {
            "caseId": self.case_id,
            "mrn": patient.mrn,
            "firstName": patient.first_name,
            "lastName": patient.last_name,
            "dateOfBirth": iso_date(patient.date_of_birth),
            "gender": gender,
            "email": patient.email,
            "phone": patient.phone,
        }

        def reconcile() -> dict[str, Any] | None:
            results = _found(lambda: self.client.find_patients(self.case_id))
            found = [r for r in results if r.get("patientId")]
            return {"patientId": str(found[0]["patientId"])} if found else None

        answer = run_operation(
            operation,
            Attempt(
                call=lambda key: self.client.create_patient(body, idempotency_key=key),
                reconcile=reconcile,
                patient=patient,
                label="Create patient",
            ),
            user=self.user,
        )
        patient_id = str(answer.get("patientId") or "")
        if not patient_id:
            raise _protocol_error(operation, "Create patient answer had no patientId.")
        AlignCase.objects.filter(pk=state.pk).update(patient_id=patient_id)
        state.patient_id = patient_id
        return patient_id

    def create_order(self, state: AlignCase) -> str:
        if state.order_id:
            return state.order_id
        order_type = get_setting("PRIMARY_ORDER_TYPE")
        operation = operation_for(
            self.case,
            RemoteOperation.CREATE_ORDER,
            f"create_order:{self.case.pk}",
            user=self.user,
        )
        body = {
            "caseId": self.case_id,
            "patientId": state.patient_id,
            "mrn": self.patient.mrn,
            "orderType": order_type,
            "treatmentOption": self.adapter.treatment_option(self.case),
            "chiefConcern": get_setting("CHIEF_CONCERN"),
        }

        def reconcile() -> dict[str, Any] | None:
            for found in _found(lambda: self.client.find_orders(self.case_id)):
                if found.get("orderId") and found.get("orderType", order_type) == order_type:
                    return {"orderId": str(found["orderId"])}
            return None

        answer = run_operation(
            operation,
            Attempt(
                call=lambda key: self.client.create_order(body, idempotency_key=key),
                reconcile=reconcile,
                patient=self.patient,
                label=f"Create primary order ({order_type})",
            ),
            user=self.user,
        )
        order_id = str(answer.get("orderId") or "")
        if not order_id:
            raise _protocol_error(operation, "Create order answer had no orderId.")
        AlignCase.objects.filter(pk=state.pk).update(order_id=order_id)
        state.order_id = order_id
        return order_id

    def upload_assets(self, state: AlignCase) -> None:
        if state.assets_uploaded_at:
            return
        operation = upload_operation(self.case, user=self.user)
        if operation is None:  # eligibility saw files, but they were removed meanwhile
            raise NothingToUpload
        send_upload(
            operation,
            patient_id=state.patient_id,
            patient=self.patient,
            adapter=self.adapter,
            client=self.client,
            user=self.user,
        )
        state.refresh_from_db(fields=["assets_uploaded_at"])


def _found(find: Any) -> list[dict[str, Any]]:
    """A find call's results; a service that answers 404 or refuses the call found nothing.

    The POST that follows carries the operation's idempotency key, so a service that
    cannot be asked still does not act twice if it honours the key.
    """
    try:
        return list(find())
    except (AlignNotFound, AlignRequestRejected):
        return []


def _protocol_error(operation: RemoteOperation, message: str) -> OperationFailed:
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.FAILED, last_errors=[message]
    )
    record(operation.case, operation.kind, CaseEvent.FAILED, message, status_code=502)
    return OperationFailed(operation, 502, [message])


def initiate_align_order(
    request_or_user: Any, case: Any, *, client: AlignServiceClient | None = None
) -> AlignResult:
    """Send ``case`` to Align, or resume where an earlier run stopped."""
    user = user_of(request_or_user)
    eligibility = can_send_to_align(case)
    if not eligibility.ok:
        errors = [f"Not met: {label}" for label in eligibility.failed]
        record(case, ACTION, CaseEvent.FAILED, "; ".join(errors), status_code=400, user=user)
        return AlignResult(400, errors)

    state = align_state(case)
    if state.order_sent:
        record(case, ACTION, CaseEvent.SKIPPED, "Already sent to Align; nothing to do.", user=user)
        return AlignResult.success()

    lease = _claim_case(state)
    if not lease:
        message = "This case is already being sent to Align by another request."
        record(case, ACTION, CaseEvent.SKIPPED, message, status_code=409, user=user)
        return AlignResult(409, [message])
    try:
        adapter = get_adapter()
        patient = patient_or_refusal(case, adapter, ACTION, user)
        if isinstance(patient, AlignResult):
            return patient
        sender = OrderSender(case, user, client or AlignServiceClient(), adapter, patient)
        problems = _patient_problems(sender.patient)
        if problems:
            record(case, ACTION, CaseEvent.FAILED, " ".join(problems), status_code=400, user=user)
            return AlignResult(400, problems)
        state.refresh_from_db()
        if state.align_case_id != sender.case_id:
            state.align_case_id = sender.case_id
            state.save(update_fields=["align_case_id", "updated_at"])
        record(case, ACTION, CaseEvent.STARTED, "Sending the case to Align.", user=user)
        try:
            for step in (sender.create_patient, sender.create_order, sender.upload_assets):
                _renew_case(state, lease)
                step(state)
        except NothingToUpload:
            record(case, ACTION, CaseEvent.FAILED, NO_FILES, status_code=400, user=user)
            return AlignResult(400, [NO_FILES])
        except OperationBusy:
            message = "A step of this case is being retried right now; try again shortly."
            record(case, ACTION, CaseEvent.SKIPPED, message, status_code=409, user=user)
            return AlignResult(409, [message])
        except OperationFailed as failure:
            record(
                case,
                ACTION,
                CaseEvent.FAILED,
                f"Stopped at {failure.operation.get_kind_display().lower()}; "
                "running again resumes there.",
                status_code=failure.status_code,
                user=user,
            )
            return AlignResult(failure.status_code, failure.errors)
        record(
            case,
            ACTION,
            CaseEvent.SUCCEEDED,
            f"Sent to Align (patient {state.patient_id}, order {state.order_id}).",
            status_code=200,
            user=user,
        )
        transaction.on_commit(
            lambda: signals.order_initiated.send(sender=AlignCase, case=case, align_case=state)
        )
        return AlignResult.success()
    finally:
        _release_case(state, lease)
