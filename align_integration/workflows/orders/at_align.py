"""What Align holds already for a case, asked before creating anything.

The order flow creates a patient or a primary order only when Align holds none: these
functions are the operation engine's ``reconcile`` step (asked before the first attempt,
and again after an ambiguous one) and the look-up of the ids Align's sales orders name.
One candidate at Align is adopted; several are a :class:`ConflictAtAlign` with a message
for staff (Align's ids only, never patient data), and nothing is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from align_integration.cases import align_patient_id
from align_integration.client.errors import (
    AlignNotFound,
    AlignProtocolError,
    AlignRequestRejected,
)
from align_integration.client.service import AlignServiceClient
from align_integration.models import AlignOrder
from align_integration.workflows.errors import looks_like_id
from align_integration.workflows.operations import ConflictAtAlign


def shown(ids: list[str] | str) -> str:
    """Align's ids for a message: id-shaped ones as they are, anything else not shown."""
    values = [ids] if isinstance(ids, str) else ids
    return ", ".join(value if looks_like_id(value, 64) else "(not shown)" for value in values)


def found(find: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A find call's results; a service that answers 404, refuses the call or answers it
    with something unreadable found nothing.

    The POST that follows carries the operation's idempotency key, so a service that
    cannot be asked still does not act twice if it honours the key.
    """
    try:
        return list(find())
    except (AlignNotFound, AlignRequestRejected, AlignProtocolError):
        return []


def patient_at_align(client: AlignServiceClient, case_id: str) -> dict[str, Any] | None:
    """``{"patientId"}`` of the one patient Align holds for ``case_id``, or ``None``."""
    results = found(lambda: client.find_patients(case_id))
    patient_ids = sorted({str(r["patientId"]) for r in results if r.get("patientId")})
    if len(patient_ids) > 1:
        raise ConflictAtAlign(
            f"Align already holds {len(patient_ids)} patients for this case "
            f"({shown(patient_ids)}); none was adopted and no patient was created. "
            "Ask Align which one is right and remove the other, then send again."
        )
    return {"patientId": patient_ids[0]} if patient_ids else None


def order_at_align(
    client: AlignServiceClient, case_id: str, order_type: str, patient_id: str
) -> dict[str, Any] | None:
    """``{"orderId"}`` of the one ``order_type`` order Align holds for ``case_id``, or
    ``None``; an order under another patient than ``patient_id`` is a conflict too."""
    orders: dict[str, str] = {}  # orderId -> patientId
    for result in found(lambda: client.find_orders(case_id)):
        if result.get("orderId") and result.get("orderType", order_type) == order_type:
            orders[str(result["orderId"])] = str(result.get("patientId") or "")
    if len(orders) > 1:
        raise ConflictAtAlign(
            f"Align already holds {len(orders)} {order_type} orders for this case "
            f"({shown(sorted(orders))}); none was adopted and no order was created. "
            "Ask Align which one is right and cancel the other, then send again."
        )
    for order_id, holder in orders.items():
        if holder and holder != patient_id:
            raise ConflictAtAlign(
                f"Align holds order {shown(order_id)} for this case under patient "
                f"{shown(holder)}, not under this case's patient {shown(patient_id)}; no order "
                "was created. Ask Align "
                "which patient is right."
            )
        return {"orderId": order_id}
    return None


def sales_order_patient(case: Any) -> str:
    """Align's patient id named by the case's sales orders (newest primary, else newest of
    any type), or ``""``."""
    primary = align_patient_id(case)
    if primary:
        return primary
    order = (
        AlignOrder.objects.filter(case=case)
        .exclude(patient_id="")
        .order_by("-created_at", "-pk")
        .first()
    )
    return order.patient_id if order else ""
