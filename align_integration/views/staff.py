"""Staff portal: the Align panel (checklist, button, timeline) and the send action."""

from __future__ import annotations

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
TIMELINE_LENGTH = 50


def _panel(
    request: HttpRequest, case_ref: str, case: object, result: AlignResult | None = None
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
        "result": result,
    }
    status = result.status_code if result is not None else 200
    return render(request, "align_integration/staff/panel.html", context, status=status)


@require_GET
@staff_member_required
def align_panel(request: HttpRequest, case_ref: str) -> HttpResponse:
    return _panel(request, case_ref, case_or_404(case_ref))


@waffle_flag(INITIATE_FLAG)
@require_POST
def initiate_order(request: HttpRequest, case_ref: str) -> HttpResponse:
    """Run ``initiate_align_order``; 200 on success, the service's status otherwise."""
    if not (request.user.is_authenticated and request.user.is_staff):
        if wants_json(request):
            return JsonResponse({"ok": False, "errors": ["Staff only."]}, status=403)
        return HttpResponse("Staff only.", status=403)
    case = case_or_404(case_ref)
    result = Align().initiate_align_order(request, case)
    if wants_json(request):
        return result_json(result)
    return _panel(request, case_ref, case, result)
