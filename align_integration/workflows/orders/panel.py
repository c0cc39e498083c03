"""What the staff panel shows about one case, for the panel page and ``{% align_panel %}``.

One read of the case's Align state: the checklist, whether the case is at Align already
(sent by this app, or by the old tool and imported), its sales order, what an unknown
gender will be sent as, whether outbound traffic is paused, and the newest timeline
entries.  Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

from align_integration.adapters import get_adapter
from align_integration.cases import Eligibility, align_sales_order_number, can_send_to_align
from align_integration.conf import get_setting
from align_integration.models import AlignCase, AlignOrder, CaseEvent, RemoteOperation
from align_integration.outbound import outbound_paused

#: The waffle flag that gates sending from the panel.
INITIATE_FLAG = "initiate-align-order"
#: The permission that sending a case needs, on top of ``is_staff``.
SEND_PERMISSION = "align_integration.send_to_align"


def may_send(user: Any) -> bool:
    """Active staff holding ``align_integration.send_to_align``."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(SEND_PERMISSION)
    )


@dataclass
class StaffPanel:
    """The panel of one case (see :func:`staff_panel`)."""

    eligibility: Eligibility
    state: AlignCase | None
    sales_order_number: str | None
    gender_unknown: bool
    default_gender: str
    paused: bool
    imported: bool = False
    events: list[CaseEvent] = field(default_factory=list)

    @property
    def at_align(self) -> bool:
        """The case is at Align (sent by this app, or imported from the old tool)."""
        return bool(self.state and self.state.order_sent)

    @property
    def can_send(self) -> bool:
        return self.eligibility.ok and not self.at_align


def _gender_unknown(case: Any) -> bool:
    try:
        return get_adapter().patient(case).gender not in ("M", "F")
    except (AttributeError, ObjectDoesNotExist):
        return False  # no usable patient: sending refuses it with its own reason


def _imported(case: Any, state: AlignCase | None) -> bool:
    """Marked as sent by ``align_import_legacy`` rather than sent by this app."""
    if state is None or not state.order_sent:
        return False
    sent_here = RemoteOperation.objects.filter(
        case=case, kind=RemoteOperation.CREATE_PATIENT
    ).exists()
    return not sent_here and AlignOrder.objects.filter(case=case, source="legacy").exists()


def staff_panel(case: Any, *, timeline_length: int = 50) -> StaffPanel:
    """The staff panel of ``case`` with its ``timeline_length`` newest timeline entries."""
    state = AlignCase.objects.filter(case=case).first()
    return StaffPanel(
        eligibility=can_send_to_align(case),
        state=state,
        sales_order_number=align_sales_order_number(case),
        gender_unknown=_gender_unknown(case),
        default_gender=str(get_setting("DEFAULT_GENDER")),
        paused=outbound_paused(),
        imported=_imported(case, state),
        events=list(
            CaseEvent.objects.filter(case=case).order_by("-created_at", "-pk")[:timeline_length]
        ),
    )
