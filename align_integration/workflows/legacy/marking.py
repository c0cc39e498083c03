"""Marking the old tool's cases as sent, so that the app never sends them again.

A case the old tool sent has sales orders: Align created its patient and its primary
order, and the old tool uploaded its assets.  After its sales orders are imported, its
``AlignCase`` gets Align's patient id (the old ``pid``, from the newest primary sales
order), the primary sales order number standing in for the order id the old tool never
kept, and an upload time: ``order_sent`` is then true, the staff panel shows "Already at
Align" and ``initiate_align_order`` sends nothing.  ``align_case_id`` becomes the case id
the old tool sent (the ``case_id`` of its rows), which Align's callbacks carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from align_integration.adapters import CaseAdapter
from align_integration.models import AlignCase, AlignOrder, CaseEvent
from align_integration.workflows.orders.at_align import sales_order_patient, shown
from align_integration.workflows.timeline import record


@dataclass(frozen=True)
class Marking:
    """What marking one case did: ``marked`` now, or why not (a note for the report)."""

    marked: bool
    note: str = ""


def _sales_order(case: Any) -> AlignOrder | None:
    orders = AlignOrder.objects.filter(case=case).order_by("-created_at", "-pk")
    return orders.filter(order_type=AlignOrder.PRIMARY).first() or orders.first()


def mark_sent(case: Any, legacy_case_id: str, adapter: CaseAdapter, *, dry_run: bool) -> Marking:
    """Mark ``case`` (whose sales orders are imported) as sent to Align by the old tool.

    A dry run imports no sales orders, so it only tells whether the case would be marked.
    """
    if dry_run:
        known = AlignCase.objects.filter(case=case).first()
        return Marking(not (known is not None and known.order_sent))
    order = _sales_order(case)
    patient_id = sales_order_patient(case)
    if order is None or not patient_id:
        return Marking(False, "no sales order names Align's patient id: not marked as sent")
    state = AlignCase.objects.filter(case=case).first()
    if state is not None and state.order_sent:
        return Marking(False)  # already marked (an earlier run), or sent by this app
    if state is not None and state.patient_id and state.patient_id != patient_id:
        return Marking(
            False,
            f"this app holds Align patient {shown(state.patient_id)} for the case, the sales "
            f"orders name {shown(patient_id)}: not marked as sent; check the case with Align",
        )
    note = ""
    if adapter.case_reference(case) != legacy_case_id:
        note = (
            "CaseAdapter.case_reference differs from the case id the old tool sent: "
            "ClinCheck calls would name another caseId; override case_reference"
        )
    with transaction.atomic():
        state = AlignCase.objects.select_for_update().get(pk=AlignCase.objects.for_case(case).pk)
        if state.order_sent:
            return Marking(False)
        state.patient_id = state.patient_id or patient_id
        state.order_id = state.order_id or order.sales_order_number
        state.assets_uploaded_at = state.assets_uploaded_at or order.created_at
        state.align_case_id = state.align_case_id or legacy_case_id
        state.save()
        record(
            case,
            "legacy_marked_sent",
            CaseEvent.INFO,
            f"Already at Align: sent by the old tool (Align patient {shown(state.patient_id)}, "
            f"sales order {shown(order.sales_order_number)}); the app never sends it again.",
        )
    return Marking(True, note)
