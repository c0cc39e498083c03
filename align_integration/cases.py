"""Case-level questions the host's templates and code ask: can it be sent, what did Align say.

``AlignCaseMixin`` puts the same answers on the host's case model as properties, as the
old tool's ``Case`` model had them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from align_integration import signals
from align_integration.adapters import get_adapter
from align_integration.conf import get_setting
from align_integration.models import AlignOrder


@dataclass
class Eligibility:
    """The staff checklist: ``ok`` when every check passed."""

    checks: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _, passed in self.checks)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failed(self) -> list[str]:
        return [label for label, passed in self.checks if not passed]


def can_send_to_align(case: Any) -> Eligibility:
    """The criteria of the seeds: lab is Align, photo assessment approved, >= 2 STL files."""
    adapter = get_adapter()
    minimum = int(get_setting("MIN_STL_FILES"))
    stl_count = adapter.stl_file_count(case)
    return Eligibility(
        checks=[
            ("Prescription lab is Align", adapter.lab_is_align(case)),
            ("Photo assessment approved", adapter.photo_assessment_approved(case)),
            (f"At least {minimum} STL files ({stl_count} on file)", stl_count >= minimum),
        ]
    )


def _latest_order(case: Any, order_type: str) -> Any:
    return (
        AlignOrder.objects.filter(case=case, order_type=order_type)
        .order_by("-created_at", "-pk")
        .first()
    )


def align_sales_order_number(case: Any, order_type: str = "primary") -> str | None:
    """The sales order number of the newest ``AlignOrder`` of that type, or ``None``."""
    order = _latest_order(case, order_type)
    return order.sales_order_number if order else None


def align_patient_id(case: Any, order_type: str = "primary") -> str | None:
    """Align's patient id from the newest ``AlignOrder`` of that type, or ``None``."""
    order = _latest_order(case, order_type)
    return order.patient_id if order else None


class AlignCaseMixin:
    """Mix into the host's case model for ``case.can_send_to_align`` and friends."""

    @property
    def can_send_to_align(self) -> Eligibility:
        return can_send_to_align(self)

    @property
    def align_sales_order_number(self) -> str | None:
        return align_sales_order_number(self)

    @property
    def align_patient_id(self) -> str | None:
        return align_patient_id(self)


def case_changed(case: Any) -> None:
    """Tell the app that an input of the case's eligibility changed.

    Call it when the photo assessment is approved, the lab changes, or scan files arrive
    (an iTero scan that lands on a case calls it by itself).  With the waffle flag
    ``auto-send-to-align`` on, a case that is now eligible is sent to Align in the
    background, once; otherwise nothing happens.  Cheap and safe to call often.
    """
    signals.eligibility_changed.send(sender=type(case), case=case)


def asset_download_url(asset: Any) -> str:
    """The only URL of a case asset's file: the authenticated download view (never the
    storage's own URL, which would serve patient files to anyone holding the link)."""
    return reverse(
        "align_integration:case-asset-download",
        kwargs={"case_ref": get_adapter().url_reference(asset.case), "asset_id": asset.pk},
    )
