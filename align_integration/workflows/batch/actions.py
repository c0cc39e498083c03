"""What each batch command does to one case: ClinCheck accept, ClinCheck revision, asset
upload, and sending the order.

Each action first *checks* the case (already done? possible at all?) and then *sends*.
"Already done" is the ``RemoteOperation`` of the same logical action in state
``succeeded`` (accept per case and screenshot, revision per case, plan and comment, upload
per case and asset set, an order per case), so a re-run never repeats a remote action.
A dry run checks inside a transaction that is rolled back: nothing is written, nothing sent.
While outbound traffic is paused (switch ``align-outbound-paused``) a row that would send
is reported ``paused``: nothing is sent and no attempt is spent (see ``runner``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import transaction

from align_integration.adapters import get_adapter
from align_integration.cases import can_send_to_align
from align_integration.client.service import AlignServiceClient
from align_integration.models import AlignCase, CaseAsset, RemoteOperation
from align_integration.workflows import clincheck
from align_integration.workflows.orders.flow import initiate_align_order
from align_integration.workflows.orders.uploads import (
    NO_FILES,
    case_patient_id,
    upload_case_assets,
    upload_dedupe_key,
    upload_operation,
)
from align_integration.workflows.results import AlignResult

SUCCEEDED = "succeeded"
FAILED = "failed"
ALREADY_DONE = "skipped: already done"
DUPLICATE = "skipped: duplicate"
WOULD_SEND = "dry run: would send"
NOT_RUN = "not run: interrupted"
PAUSED = "paused"


@dataclass(frozen=True)
class RowOutcome:
    """How one row ended: an outcome above, Align's (or our) status code, a message.

    ``throttled``: it failed because the service asked us to slow down (429, 503 or a
    ``Retry-After``), which it asked to wait ``retry_after`` seconds for (``None``: not
    said); the runner tries such a row again within the run while its operation still
    has a background retry scheduled (``retry_scheduled``; ``None``: not known).
    """

    outcome: str
    status: int | None = None
    message: str = ""
    throttled: bool = False
    retry_after: float | None = None
    retry_scheduled: bool | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED


def outcome_of(
    result: AlignResult, done_message: str, operation: RemoteOperation | None
) -> RowOutcome:
    """The row outcome of a flow's result; notes a background retry when one is scheduled."""
    if result.ok:
        return RowOutcome(SUCCEEDED, result.status_code, done_message)
    message = "; ".join(result.errors) or f"HTTP {result.status_code}"
    scheduled = None
    if operation is not None:
        operation.refresh_from_db()
        scheduled = operation.state == RemoteOperation.RETRY_SCHEDULED
        if scheduled:
            message += " (a background retry is scheduled)"
    return RowOutcome(FAILED, result.status_code, message, retry_scheduled=scheduled)


class _Rollback(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def without_writes(check: Any) -> Any:
    """Run ``check()`` in a transaction that is always rolled back; return its value."""
    try:
        with transaction.atomic():
            raise _Rollback(check())
    except _Rollback as rollback:
        return rollback.value


@dataclass(frozen=True)
class Plan:
    """What :meth:`CaseAction.check` found: an outcome that settles the row (already done,
    impossible), or ``None`` and what :meth:`CaseAction.send` needs (the operation row and,
    for an accept, its screenshot)."""

    outcome: RowOutcome | None = None
    operation: RemoteOperation | None = None
    screenshot: CaseAsset | None = None  # the acceptance screenshot an accept sends


class CaseAction:
    """One batch action; subclasses say how to check and send one case."""

    name: ClassVar[str] = ""
    needs_comment: ClassVar[bool] = False
    would_send: ClassVar[str] = ""

    def check(self, case: Any, comment: str, *, dry_run: bool) -> Plan:
        """Whether to send; with ``dry_run`` nothing may be written."""
        raise NotImplementedError

    def check_many(self, rows: list[tuple[Any, str]], *, dry_run: bool) -> list[Plan] | None:
        """:meth:`check` of many (case, comment) rows at once, in bulk queries; ``None``
        where this action checks row by row."""
        return None

    def send(
        self, case: Any, comment: str, plan: Plan, *, user: Any, client: AlignServiceClient
    ) -> RowOutcome:
        raise NotImplementedError


# -- ClinCheck ----------------------------------------------------------------------------------
ALREADY_DONE_OUTCOME = RowOutcome(ALREADY_DONE, 200, "Already sent to Align; not sent again.")


class ClinCheckAction(CaseAction):
    """ClinCheck accept or revision: ``set_case_status`` of the facade, in two halves so the
    operation row found by the check is the one sent (one lookup per row, not two)."""

    action: ClassVar[str] = ""
    done_message: ClassVar[str] = ""

    def _screenshot(self, case: Any) -> CaseAsset | None:
        if self.action != clincheck.APPROVE:
            return None
        return clincheck.latest_acceptance_screenshot(case)

    def check(self, case: Any, comment: str, *, dry_run: bool) -> Plan:
        screenshot = self._screenshot(case)

        def prepare() -> RemoteOperation:
            return clincheck.prepare_operation(
                case, self.action, comment or None, screenshot=screenshot
            )

        try:
            if dry_run:
                state = without_writes(lambda: prepare().state)
                operation = None
            else:
                operation = prepare()
                state = operation.state
        except ValueError as problem:
            # A real run lets set_case_status refuse it and record that on the timeline.
            return Plan(RowOutcome(FAILED, 400, str(problem))) if dry_run else Plan()
        if state == RemoteOperation.SUCCEEDED:
            return Plan(ALREADY_DONE_OUTCOME)
        return Plan(operation=operation, screenshot=screenshot)

    def check_many(self, rows: list[tuple[Any, str]], *, dry_run: bool) -> list[Plan] | None:
        """Accepts in bulk: the newest screenshots in one query, the operations read and
        made in a few (a revision's operation depends on each case's plan: row by row)."""
        if dry_run or self.action != clincheck.APPROVE:
            return None
        cases = [case for case, _ in rows]
        screenshots = clincheck.latest_acceptance_screenshots(cases)
        operations = clincheck.prepare_accepts(
            [(case, screenshots[case.pk]) for case in cases if case.pk in screenshots]
        )
        plans = []
        for case in cases:
            operation = operations.get(case.pk)
            if operation is None:  # no screenshot: set_case_status refuses and records why
                plans.append(Plan())
            elif operation.state == RemoteOperation.SUCCEEDED:
                plans.append(Plan(ALREADY_DONE_OUTCOME))
            else:
                plans.append(Plan(operation=operation, screenshot=screenshots[case.pk]))
        return plans

    def send(
        self, case: Any, comment: str, plan: Plan, *, user: Any, client: AlignServiceClient
    ) -> RowOutcome:
        operation = plan.operation
        if operation is None:  # refused before sending: the facade records why
            result = clincheck.set_case_status(
                user, case, self.action, comment or None, client=client
            )
        else:
            operation.case = case  # loaded already
            result = clincheck.perform_clincheck(
                operation, user=user, client=client, screenshot=plan.screenshot
            )
        return outcome_of(result, self.done_message, operation)


class ClinCheckAccept(ClinCheckAction):
    name = "align_clincheck_accept"
    action = clincheck.APPROVE
    would_send = "ClinCheck accept would be sent with the newest acceptance screenshot."
    done_message = "ClinCheck accept sent."


class ClinCheckRevise(ClinCheckAction):
    name = "align_clincheck_revise"
    action = clincheck.REVISE
    needs_comment = True
    would_send = "ClinCheck revision request would be sent."
    done_message = "ClinCheck revision request sent."


# -- asset upload -------------------------------------------------------------------------------
class UploadAssets(CaseAction):
    name = "align_upload_assets"
    would_send = "The case's STL files would be uploaded."

    def check(self, case: Any, comment: str, *, dry_run: bool) -> Plan:
        if not dry_run:
            operation = upload_operation(case)
            if operation is not None and operation.state == RemoteOperation.SUCCEEDED:
                return Plan(RowOutcome(ALREADY_DONE, 200, "These files were uploaded already."))
            return Plan()  # upload_case_assets reports (and records) what is missing
        if not case_patient_id(case):
            return Plan(RowOutcome(FAILED, 409, "The case has no Align patient yet."))
        files = get_adapter().stl_files(case)
        if not files:
            return Plan(RowOutcome(FAILED, 400, NO_FILES))
        key = upload_dedupe_key(case, files)
        if RemoteOperation.objects.filter(dedupe_key=key, state=RemoteOperation.SUCCEEDED):
            return Plan(RowOutcome(ALREADY_DONE, 200, "These files were uploaded already."))
        return Plan()

    def send(
        self, case: Any, comment: str, plan: Plan, *, user: Any, client: AlignServiceClient
    ) -> RowOutcome:
        result = upload_case_assets(case, user=user, client=client)
        operation = None if result.ok else upload_operation(case)
        return outcome_of(result, "Assets uploaded.", operation)


# -- sending orders -----------------------------------------------------------------------------
ORDER_STEPS = (
    RemoteOperation.CREATE_PATIENT,
    RemoteOperation.CREATE_ORDER,
    RemoteOperation.UPLOAD_ASSETS,
)


class SendOrder(CaseAction):
    name = "align_send_orders"
    would_send = "The case would be sent to Align (patient, primary order, assets)."

    def check(self, case: Any, comment: str, *, dry_run: bool) -> Plan:
        state = AlignCase.objects.filter(case=case).first()
        if state is not None and state.order_sent:
            return Plan(RowOutcome(ALREADY_DONE, 200, "Already sent to Align; not sent again."))
        if dry_run:
            eligibility = can_send_to_align(case)
            if not eligibility.ok:
                reasons = "; ".join(f"Not met: {label}" for label in eligibility.failed)
                return Plan(RowOutcome(FAILED, 400, reasons))
        return Plan()

    def send(
        self, case: Any, comment: str, plan: Plan, *, user: Any, client: AlignServiceClient
    ) -> RowOutcome:
        result = initiate_align_order(user, case, client=client)
        retrying = None
        if not result.ok:  # the step that failed, if its background retry is scheduled
            retrying = RemoteOperation.objects.filter(
                case=case,
                kind__in=ORDER_STEPS,
                state=RemoteOperation.RETRY_SCHEDULED,
            ).first()
        return outcome_of(result, "Sent to Align.", retrying)


ACTIONS: dict[str, type[CaseAction]] = {
    action.name: action for action in (ClinCheckAccept, ClinCheckRevise, UploadAssets, SendOrder)
}
