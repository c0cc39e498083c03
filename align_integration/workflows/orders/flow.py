"""Sending a case to Align: create patient -> create primary order (IAS) -> upload assets.

Resumable: the Align ids are kept on ``AlignCase`` and every remote step is a
``RemoteOperation`` with a stored idempotency key, so running again after any failure
starts at the failed step and never creates a second patient or order, also when the
failure was ambiguous.  A lease on ``AlignCase`` keeps two runs for one case from acting
at once.

Cases already at Align are never created again: a case marked as sent (by this app, or by
``align_import_legacy`` for the old tool's cases) is not sent; a case whose sales order is
known takes its patient (and order) from it; and before the first create-patient and
create-order the service's find calls are asked, adopting what Align holds already.  Two
candidates at Align are a conflict: nothing is created and staff are told.
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
from align_integration.cases import align_sales_order_number, can_send_to_align
from align_integration.client.service import AlignServiceClient
from align_integration.conf import get_setting
from align_integration.models import AlignCase, CaseEvent, RemoteOperation
from align_integration.outbound import OutboundPaused, outbound_paused
from align_integration.workflows.operations import (
    Attempt,
    OperationBusy,
    OperationFailed,
    claim_seconds,
    operation_for,
    patient_or_refusal,
    run_operation,
)
from align_integration.workflows.orders.at_align import (
    order_at_align,
    patient_at_align,
    sales_order_patient,
    shown,
)
from align_integration.workflows.orders.uploads import NO_FILES, send_upload, upload_operation
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record, user_of

ACTION = "initiate_order"
NO_CHIEF_CONCERN = (
    "The chief concern is empty: set ALIGN_INTEGRATION['CHIEF_CONCERN'] or override "
    "CaseAdapter.chief_concern."
)


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
        self.chief_concern = str(adapter.chief_concern(case) or "").strip()

    def create_patient(self, state: AlignCase) -> str:
        if state.patient_id:
            return state.patient_id
        known = sales_order_patient(self.case)
        if known:  # Align named the patient in a sales order: it exists at Align already
            return self._adopt(state, "patient_id", known, f"Align patient {shown(known)}")
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
                    note=True,
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

        answer = run_operation(
            operation,
            Attempt(
                call=lambda key: self.client.create_patient(body, idempotency_key=key),
                reconcile=lambda: patient_at_align(self.client, self.case_id),
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
        sales_order = align_sales_order_number(self.case)
        if sales_order:  # Align sent a primary sales order: the order exists at Align
            what = f"primary sales order {shown(sales_order)}"
            return self._adopt(state, "order_id", sales_order, what)
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
            "chiefConcern": self.chief_concern,
        }

        answer = run_operation(
            operation,
            Attempt(
                call=lambda key: self.client.create_order(body, idempotency_key=key),
                reconcile=lambda: order_at_align(
                    self.client, self.case_id, order_type, state.patient_id
                ),
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

    def _adopt(self, state: AlignCase, field: str, value: str, what: str) -> str:
        """Take an id Align gave in a sales order instead of creating the thing again."""
        AlignCase.objects.filter(pk=state.pk).update(**{field: value})
        setattr(state, field, value)
        record(
            self.case,
            ACTION,
            CaseEvent.INFO,
            f"Already at Align: {what} is known from the case's sales orders; not created again.",
            user=self.user,
            note=True,
        )
        return value

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


def _protocol_error(operation: RemoteOperation, message: str) -> OperationFailed:
    RemoteOperation.objects.filter(pk=operation.pk).update(
        state=RemoteOperation.FAILED, last_errors=[message]
    )
    record(operation.case, operation.kind, CaseEvent.FAILED, message, status_code=502)
    return OperationFailed(operation, 502, [message])


def _refuse_while_paused(case: Any, user: Any) -> None:
    """While outbound traffic is paused: say so on the timeline and raise ``OutboundPaused``."""
    if outbound_paused():
        record(
            case,
            ACTION,
            CaseEvent.SKIPPED,
            "Not sent: outbound traffic to Align is paused (switch align-outbound-paused).",
            status_code=503,
            user=user,
            note=True,
        )
        raise OutboundPaused


def initiate_align_order(
    request_or_user: Any, case: Any, *, client: AlignServiceClient | None = None
) -> AlignResult:
    """Send ``case`` to Align, or resume where an earlier run stopped.

    Raises :class:`~align_integration.outbound.OutboundPaused` while outbound traffic is
    paused (a case already at Align still answers success: nothing would be sent).
    """
    user = user_of(request_or_user)
    known = AlignCase.objects.filter(case=case).first()
    if known is not None and known.order_sent:
        record(case, ACTION, CaseEvent.SKIPPED, "Already at Align; nothing sent.", user=user)
        return AlignResult.success()
    _refuse_while_paused(case, user)
    eligibility = can_send_to_align(case)
    if not eligibility.ok:
        errors = [f"Not met: {label}" for label in eligibility.failed]
        record(
            case, ACTION, CaseEvent.FAILED, "; ".join(errors), status_code=400, user=user, note=True
        )
        return AlignResult(400, errors)

    state = align_state(case)
    if state.order_sent:
        record(case, ACTION, CaseEvent.SKIPPED, "Already at Align; nothing sent.", user=user)
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
        if not sender.chief_concern:
            problems.append(NO_CHIEF_CONCERN)
        if problems:
            record(
                case,
                ACTION,
                CaseEvent.FAILED,
                " ".join(problems),
                status_code=400,
                user=user,
                note=True,
            )
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
            record(case, ACTION, CaseEvent.FAILED, NO_FILES, status_code=400, user=user, note=True)
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
            note=True,
        )
        transaction.on_commit(
            lambda: signals.order_initiated.send(sender=AlignCase, case=case, align_case=state)
        )
        return AlignResult.success()
    finally:
        _release_case(state, lease)
