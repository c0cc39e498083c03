"""Comparing what the app holds for a case with what Align's find calls say: pure logic.

For the patient and for the primary order, one of:

- in step: both sides name the same one id (or neither side has one);
- at Align, unknown here: Align holds a patient or order whose id the app does not hold
  (none here, or more than the one here);
- here, not at Align: the app holds an id Align does not list;
- conflicting ids: the two sides name different ids, or Align's order belongs to another
  patient than the case's, or the newest primary sales order names another patient.

A finding carries the id that ``--fix`` may adopt: only where Align lists exactly one
candidate, and for an order only when that order belongs to the case's patient.  Nothing
here is ever created or deleted at Align.  Messages hold ids only, never patient data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

AT_ALIGN_ONLY = "at Align, unknown here"
HERE_ONLY = "here, not at Align"
CONFLICT = "conflicting ids"
DRIFT_KINDS = (AT_ALIGN_ONLY, HERE_ONLY, CONFLICT)

PATIENT = "patient"
ORDER = "order"


@dataclass(frozen=True)
class Finding:
    """One difference: its kind, what it is about (patient or order), a message of ids, and
    the Align id ``--fix`` would adopt (``""``: nothing to adopt)."""

    kind: str
    subject: str
    message: str
    adopt: str = ""


@dataclass(frozen=True)
class AlignOrderSeen:
    """One order from Align's find call: its id and the patient it belongs to."""

    order_id: str
    patient_id: str


@dataclass(frozen=True)
class Comparison:
    """Both sides of one case and what differs between them."""

    patient_here: str
    order_here: str
    patients_at_align: tuple[str, ...]
    orders_at_align: tuple[AlignOrderSeen, ...]
    findings: tuple[Finding, ...]

    @property
    def in_step(self) -> bool:
        return not self.findings

    def adoption(self, subject: str) -> str:
        """The id ``--fix`` adopts for ``subject`` (``""``: none)."""
        return next((f.adopt for f in self.findings if f.subject == subject and f.adopt), "")

    @property
    def kinds(self) -> list[str]:
        """The kinds of drift found, each once, in a fixed order."""
        found = {finding.kind for finding in self.findings}
        return [kind for kind in DRIFT_KINDS if kind in found]


def _ids(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def patient_ids(results: Iterable[dict[str, Any]], case_id: str) -> tuple[str, ...]:
    """Align's patient ids for the case, each once, in Align's order."""
    found: list[str] = []
    for result in results:
        patient_id = str(result.get("patientId") or "").strip()
        if patient_id and str(result.get("caseId", case_id)) == case_id:
            if patient_id not in found:
                found.append(patient_id)
    return tuple(found)


def primary_orders(
    results: Iterable[dict[str, Any]], case_id: str, order_type: str
) -> tuple[AlignOrderSeen, ...]:
    """Align's primary orders for the case (other order types are not this app's)."""
    found: dict[str, AlignOrderSeen] = {}
    for result in results:
        order_id = str(result.get("orderId") or "").strip()
        if not order_id or str(result.get("caseId", case_id)) != case_id:
            continue
        if str(result.get("orderType", order_type)) != order_type:
            continue
        found.setdefault(order_id, AlignOrderSeen(order_id, str(result.get("patientId") or "")))
    return tuple(found.values())


def _compare_patient(here: str, at_align: tuple[str, ...]) -> list[Finding]:
    if here and at_align == (here,):
        return []
    if here and here in at_align:
        others = _ids(p for p in at_align if p != here)
        return [Finding(AT_ALIGN_ONLY, PATIENT, f"Align also holds patient {others}.")]
    if here and not at_align:
        return [Finding(HERE_ONLY, PATIENT, f"Patient {here} is not at Align.")]
    if here:
        adopt = at_align[0] if len(at_align) == 1 else ""
        return [
            Finding(CONFLICT, PATIENT, f"Patient {here} here, {_ids(at_align)} at Align.", adopt)
        ]
    if len(at_align) == 1:
        return [Finding(AT_ALIGN_ONLY, PATIENT, f"Align holds patient {at_align[0]}.", at_align[0])]
    if at_align:
        return [
            Finding(
                AT_ALIGN_ONLY,
                PATIENT,
                f"Align holds {len(at_align)} patients ({_ids(at_align)}); "
                "which one is the case's cannot be told.",
            )
        ]
    return []


def _compare_order(here: str, at_align: tuple[AlignOrderSeen, ...], patient: str) -> list[Finding]:
    ids = tuple(order.order_id for order in at_align)
    owner = {order.order_id: order.patient_id for order in at_align}

    def belongs(order_id: str) -> bool:
        return bool(patient) and owner.get(order_id) == patient

    findings: list[Finding] = []
    if here and here in ids:
        if patient and owner[here] and owner[here] != patient:
            message = f"Order {here} belongs to patient {owner[here]} at Align, not {patient}."
            findings.append(Finding(CONFLICT, ORDER, message))
        if len(ids) > 1:
            others = _ids(o for o in ids if o != here)
            findings.append(Finding(AT_ALIGN_ONLY, ORDER, f"Align also holds order {others}."))
        return findings
    if here and not ids:
        return [Finding(HERE_ONLY, ORDER, f"Order {here} is not at Align.")]
    single = ids[0] if len(ids) == 1 else ""
    adopt = single if single and belongs(single) else ""
    if here:
        message = f"Order {here} here, {_ids(ids)} at Align."
        if single and not adopt:
            message += f" It belongs to patient {owner[single] or 'none'}."
        return [Finding(CONFLICT, ORDER, message, adopt)]
    if single:
        message = f"Align holds order {single}."
        if not adopt:
            message += f" It belongs to patient {owner[single] or 'none'}, not the case's."
        return [Finding(AT_ALIGN_ONLY, ORDER, message, adopt)]
    if ids:
        return [
            Finding(
                AT_ALIGN_ONLY,
                ORDER,
                f"Align holds {len(ids)} orders ({_ids(ids)}); "
                "which one is the case's cannot be told.",
            )
        ]
    return []


def compare(
    *,
    case_id: str,
    patient_here: str,
    order_here: str,
    sales_order_patient: str,
    patients: Iterable[dict[str, Any]],
    orders: Iterable[dict[str, Any]],
    order_type: str,
) -> Comparison:
    """Compare one case.  ``patients`` and ``orders`` are the find calls' results;
    ``sales_order_patient`` is the patient id of the newest primary sales order (or ``""``)."""
    at_align = patient_ids(patients, case_id)
    seen_orders = primary_orders(orders, case_id, order_type)
    findings = _compare_patient(patient_here, at_align)
    adopted = next((f.adopt for f in findings if f.adopt), "")
    patient = adopted or (patient_here if patient_here in at_align else "")
    findings += _compare_order(order_here, seen_orders, patient)
    known = patient or patient_here
    if sales_order_patient and known and sales_order_patient != known:
        findings.append(
            Finding(
                CONFLICT,
                PATIENT,
                f"The newest primary sales order names patient {sales_order_patient}, "
                f"the case {known}.",
            )
        )
    return Comparison(patient_here, order_here, at_align, seen_orders, tuple(findings))
