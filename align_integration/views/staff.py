"""Staff portal: the Align panel (checklist, button, timeline) and the send action.

The panel needs ``is_staff``.  Sending patient data to Align needs ``is_staff`` and the
permission ``align_integration.send_to_align`` (superusers have it): without it the panel
shows no button and the send endpoint answers 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from waffle import flag_is_active
from waffle.decorators import waffle_flag

from align_integration.cases import align_sales_order_number, can_send_to_align
from align_integration.facade import Align
from align_integration.models import AlignCase, CaseEvent
from align_integration.views.common import case_or_404, result_json, wants_json
from align_integration.workflows.results import AlignResult

INITIATE_FLAG = "initiate-align-order"
SEND_PERMISSION = "align_integration.send_to_align"
TIMELINE_LENGTH = 50


def may_send(user: Any) -> bool:
    """Active staff holding ``align_integration.send_to_align``."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(SEND_PERMISSION)
    )


def _panel(
    request: HttpRequest, case_ref: str, case: Any, result: AlignResult | None = None
) -> HttpResponse:
    context = {
        "case": case,
        "case_ref": case_ref,
        "eligibility": can_send_to_align(case),
        "state": AlignCase.objects.filter(case=case).first(),
        "events": CaseEvent.objects.filter(case=case).order_by("-created_at", "-pk")[
            :TIMELINE_LENGTH
        ],
        "sales_order_number": align_sales_order_number(case),
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


@waffle_flag(INITIATE_FLAG)  # type: ignore[arg-type]  # waffle types single-argument views
@require_POST
def initiate_order(request: HttpRequest, case_ref: str) -> HttpResponse:
    """Run ``initiate_align_order``; 200 on success, the service's status otherwise."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return _forbidden(request, "Staff only.")
    if not may_send(request.user):
        return _forbidden(
            request, f"Sending a case to Align needs the permission {SEND_PERMISSION}."
        )
    case = case_or_404(case_ref)
    result = Align().initiate_align_order(request, case)
    if wants_json(request):
        return result_json(result)
    return _panel(request, case_ref, case, result)


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": False, "errors": [reason]}, status=403)
    return HttpResponse(reason, status=403, content_type="text/plain; charset=utf-8")
