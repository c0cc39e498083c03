"""``{% load align_integration %}``: the staff panel inside a host's own case page.

``{% align_panel case %}`` renders what the panel page shows (the checklist, the send
button or the Align state, the newest timeline entries) and nothing when the case's lab
is not Align (or the user is not staff), as the old tool's panel above the prescription
did.  It needs ``request``
in the template context (``django.template.context_processors.request``).  Options:
``entries=N`` (timeline entries shown, default 5) and ``case_ref=...`` (the reference
``CaseAdapter.get_case`` accepts, when it is neither the case's ``uuid`` nor its pk).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from waffle import flag_is_active

from align_integration.adapters import get_adapter
from align_integration.workflows.orders.panel import INITIATE_FLAG, may_send, staff_panel

register = template.Library()

PANEL_TEMPLATE = "align_integration/staff/_panel.html"


def url_reference(case: Any) -> str:
    """A reference ``CaseAdapter.get_case`` resolves to ``case``: its ``uuid``, pk or
    ``case_reference``, whichever the adapter accepts."""
    adapter = get_adapter()
    candidates = []
    try:
        type(case)._meta.get_field("uuid")
    except FieldDoesNotExist:
        pass
    else:
        candidates.append(str(case.uuid))
    candidates += [str(case.pk), adapter.case_reference(case)]
    for candidate in dict.fromkeys(candidates):
        try:
            if adapter.get_case(candidate).pk == case.pk:
                return candidate
        except LookupError:
            continue
    raise ImproperlyConfigured(
        "{% align_panel %} cannot tell which reference CaseAdapter.get_case accepts for "
        "this case: pass it, {% align_panel case case_ref=... %}."
    )


@register.inclusion_tag(PANEL_TEMPLATE, takes_context=True)
def align_panel(
    context: template.Context, case: Any, entries: int = 5, case_ref: str = ""
) -> dict[str, Any]:
    """The staff panel of ``case`` (nothing when its lab is not Align)."""
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured(
            "{% align_panel %} needs 'request' in the template context: add "
            "'django.template.context_processors.request' to the template engine's "
            "context_processors."
        )
    user = getattr(request, "user", None)
    if not (user is not None and user.is_active and user.is_staff):
        return {"hidden": True}  # the panel is for staff, whatever page it sits on
    if case is None or not get_adapter().lab_is_align(case):
        return {"hidden": True}
    return {
        "hidden": False,
        "embedded": True,
        "case": case,
        "case_ref": case_ref or url_reference(case),
        "panel": staff_panel(case, timeline_length=int(entries)),
        "flag_active": flag_is_active(request, INITIATE_FLAG),
        "can_send": may_send(user),
        "next_url": request.get_full_path(),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
