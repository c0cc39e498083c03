"""What each callback does to the app's state: set-based writes, each safe to repeat.

Applying an event twice changes nothing the second time, so a redelivery, a reprocess
after a crash or two workers at once cannot double an effect:

- ``sales_order.created`` inserts the ``AlignOrder`` unless that sales order (per case and
  type) is there already, in one statement; the newest ``createdAt`` wins when read
  (``cases.align_sales_order_number``), whatever the arrival order.
- ``treatment_plan.submitted`` and ``case.status_changed`` update ``AlignCase`` with a
  compare-and-set on the values read: a newer plan (version, ``createdAt``) or a newer
  ``changedAt`` wins, an older one never overwrites it, and two at once cannot both win.

Timeline rows are written where they inform a person: a plan waiting for the provider's
review, a status that changed.  A sales order is its own record (the ``AlignOrder`` row,
the staff panel, the admin) and the ``sales_order_received`` signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from align_integration import signals
from align_integration.adapters import get_adapter
from align_integration.models import AlignCase, AlignOrder, CaseEvent
from align_integration.workflows.callbacks.parsing import (
    SALES_ORDER,
    STATUS_CHANGED,
    TREATMENT_PLAN,
    ParsedEvent,
)
from align_integration.workflows.callbacks.storage import insert_unless_exists
from align_integration.workflows.timeline import record

#: How often a compare-and-set is tried again after another writer changed the row.
CAS_TRIES = 20

PLAN_FIELDS = ["treatment_plan_id", "treatment_plan_version", "treatment_plan_at"]
STATUS_FIELDS = ["status", "status_changed_at"]


def apply_event(event: ParsedEvent, case: Any) -> None:
    """Apply ``event`` to ``case``; a no-op when it was applied before."""
    if event.event_type == SALES_ORDER:
        apply_sales_order(event, case)
    elif event.event_type == TREATMENT_PLAN:
        apply_treatment_plan(event, case)
    elif event.event_type == STATUS_CHANGED:
        apply_status(event, case)
    else:  # parse_event admits only the types above
        raise ValueError(f"unknown event type {event.event_type!r}")


def apply_sales_order(event: ParsedEvent, case: Any) -> AlignOrder | None:
    """Record the sales order unless this case has it under this type; the new row or None."""
    data = event.data
    order = AlignOrder(
        case=case,
        order_type=data["orderType"],
        sales_order_number=data["salesOrderNumber"],
        patient_id=data["patientId"],
        created_at=data["createdAt"],
    )
    if not insert_unless_exists(order, ["case", "order_type", "sales_order_number"]):
        return None  # the same sales order under another webhook-id, or a redelivery
    transaction.on_commit(
        lambda: signals.sales_order_received.send(sender=AlignOrder, case=case, align_order=order)
    )
    return order


def align_state_of(case: Any) -> AlignCase:
    """The case's ``AlignCase``: the one the case lookup brought along, else read or created."""
    relation = AlignCase._meta.get_field("case").remote_field
    if relation.is_cached(case):
        state = relation.get_cached_value(case)
        if isinstance(state, AlignCase):
            return state
    return AlignCase.objects.for_case(case)


def _compare_and_set(
    state: AlignCase, fields: list[str], wins: Callable[[AlignCase], bool], new: dict[str, Any]
) -> bool:
    """Write ``new`` if ``wins(state)``, only while the row still holds the ``fields`` read.

    True when written; False when the row holds something newer (or the same).  On a
    concurrent change the row is read again and the rule asked again.
    """
    for _ in range(CAS_TRIES):
        if not wins(state):
            return False
        read = {name: getattr(state, name) for name in fields}
        if AlignCase.objects.filter(pk=state.pk, **read).update(**new, updated_at=timezone.now()):
            for name, value in new.items():
                setattr(state, name, value)
            return True
        state.refresh_from_db(fields=[*fields, "awaiting_provider_review"])
    raise RuntimeError("AlignCase kept changing under a callback")


def apply_treatment_plan(event: ParsedEvent, case: Any) -> bool:
    """Record a newer treatment plan and put the case in the provider portal."""
    data = event.data
    state = align_state_of(case)

    def newer(current: AlignCase) -> bool:
        if current.treatment_plan_at is None:
            return True
        same = (
            current.treatment_plan_id == data["planId"]
            and current.treatment_plan_version == data["version"]
        )
        return not same and (data["version"], data["createdAt"]) > (
            current.treatment_plan_version or 0,
            current.treatment_plan_at,
        )

    new = {
        "treatment_plan_id": data["planId"],
        "treatment_plan_version": data["version"],
        "treatment_plan_at": data["createdAt"],
        "awaiting_provider_review": True,
        # A newer plan without a viewer link clears the old one (it shows another version).
        "treatment_plan_viewer_url": data.get("viewerUrl", ""),
    }
    if not _compare_and_set(state, PLAN_FIELDS, newer, new):
        return False
    record(
        case,
        "treatment_plan_received",
        CaseEvent.INFO,
        f"Treatment plan {data['planId']} version {data['version']} "
        "received; the case is in the provider portal for review.",
    )
    get_adapter().on_treatment_plan_ready(case)
    transaction.on_commit(
        lambda: signals.treatment_plan_received.send(
            sender=AlignCase,
            case=case,
            align_case=state,
            plan_id=data["planId"],
            version=data["version"],
        )
    )
    return True


def apply_status(event: ParsedEvent, case: Any) -> bool:
    """Record a status whose ``changedAt`` is newer than the one held."""
    data = event.data
    state = align_state_of(case)
    seen: list[str] = []

    def newer(current: AlignCase) -> bool:
        seen[:] = [current.status]
        return current.status_changed_at is None or data["changedAt"] > current.status_changed_at

    new = {"status": data["status"], "status_changed_at": data["changedAt"]}
    if not _compare_and_set(state, STATUS_FIELDS, newer, new):
        return False
    previous = seen[0]
    if previous == state.status:
        return True  # a newer time for the same status: nothing a person needs to know
    record(case, "status_changed", CaseEvent.INFO, f"Align status changed to {state.status!r}.")
    transaction.on_commit(
        lambda: signals.case_status_changed.send(
            sender=AlignCase,
            case=case,
            align_case=state,
            status=state.status,
            previous_status=previous,
        )
    )
    return True
