"""Staff portal: the Align panel (checklist, button, timeline) and the send action.

The panel needs ``is_staff``.  Sending patient data to Align needs ``is_staff`` and the
permission ``align_integration.send_to_align`` (superusers have it): without it the panel
shows no button and the send endpoint answers 403.

The panel is also embeddable in a host's own case page (``{% align_panel case %}``); its
send form then carries ``next``, and the send answers with a redirect back to that page
(the outcome as a message) instead of the panel page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from waffle import flag_is_active
from waffle.decorators import waffle_flag

from align_integration.facade import Align
from align_integration.outbound import OutboundPaused
from align_integration.views.common import case_or_404, result_json, wants_json
from align_integration.workflows.orders.panel import (
    INITIATE_FLAG,
    SEND_PERMISSION,
    may_send,
    staff_panel,
)
from align_integration.workflows.results import AlignResult

__all__ = ["INITIATE_FLAG", "SEND_PERMISSION", "align_panel", "initiate_order", "may_send"]

TIMELINE_LENGTH = 50


def _panel(
    request: HttpRequest, case_ref: str, case: object, result: AlignResult | None = None
) -> HttpResponse:
    context = {
        "case": case,
        "case_ref": case_ref,
        "panel": staff_panel(case, timeline_length=TIMELINE_LENGTH),
        "flag_active": flag_is_active(request, INITIATE_FLAG),
        "can_send": may_send(request.user),
        "result": result,
    }
    status = result.status_code if result is not None else 200
    return render(request, "align_integration/staff/panel.html", context, status=status)


@require_GET
@staff_member_required
def align_panel(request: HttpRequest, case_ref: str) -> HttpResponse:
    return _panel(request, case_ref, case_or_404(case_ref))


def _back_to(request: HttpRequest) -> str:
    """The host page an embedded panel was sent from, if it is one of this site's."""
    target = str(request.POST.get("next") or "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else ""


@waffle_flag(INITIATE_FLAG)  # type: ignore[arg-type]  # waffle types single-argument views
@require_POST
def initiate_order(request: HttpRequest, case_ref: str) -> HttpResponse:
    """Run ``initiate_align_order``; 200 on success, the service's status otherwise, 503
    while outbound traffic is paused."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return _forbidden(request, "Staff only.")
    if not may_send(request.user):
        return _forbidden(
            request, f"Sending a case to Align needs the permission {SEND_PERMISSION}."
        )
    case = case_or_404(case_ref)
    try:
        result = Align().initiate_align_order(request, case)
    except OutboundPaused as paused:
        result = AlignResult(paused.status_code, [str(paused)])
    if wants_json(request):
        return result_json(result)
    back = _back_to(request)
    if back:
        level = messages.SUCCESS if result.ok else messages.ERROR
        text = "The case was sent to Align." if result.ok else " ".join(result.errors)
        messages.add_message(request, level, text, fail_silently=True)
        return HttpResponseRedirect(back, status=303)
    return _panel(request, case_ref, case, result)


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": False, "errors": [reason]}, status=403)
    return HttpResponse(reason, status=403, content_type="text/plain; charset=utf-8")
