"""Provider portal: the treatment-plan page, and approve / revise.

Only the case's provider (``CaseAdapter.provider_can_act``) sees the page or acts; anyone
else gets 404 and nothing is sent to Align.  Approve stores the html2canvas screenshot as
the acceptance asset (the ClinCheck accept itself is sent when aligners are bought);
revise sends the revision request at once, behind the ``set-align-order-status`` flag.
While outbound traffic is paused (switch ``align-outbound-paused``) both actions answer
503 and nothing is stored or sent.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from waffle import flag_is_active

from align_integration.adapters import get_adapter
from align_integration.facade import Align
from align_integration.models import AlignCase
from align_integration.outbound import PAUSED_MESSAGE, OutboundPaused, outbound_paused
from align_integration.views.common import case_or_404, result_json, wants_json
from align_integration.workflows.clincheck import APPROVE, FLAG, REVISE, approve_treatment_plan
from align_integration.workflows.clincheck.screenshots import ScreenshotRejected
from align_integration.workflows.results import AlignResult


def _provider_case(request: HttpRequest, case_ref: str) -> Any:
    case = case_or_404(case_ref)
    if not get_adapter().provider_can_act(request.user, case):
        raise Http404("No case with that reference.")
    return case


def _page(
    request: HttpRequest,
    case_ref: str,
    case: Any,
    result: AlignResult | None = None,
    done_message: str = "",
) -> HttpResponse:
    context = {
        "case": case,
        "case_ref": case_ref,
        "state": AlignCase.objects.filter(case=case).first(),
        "result": result,
        "done_message": done_message,
    }
    status = result.status_code if result is not None else 200
    return render(request, "align_integration/provider/case.html", context, status=status)


def _answer(
    request: HttpRequest, case_ref: str, case: Any, result: AlignResult, done: str = ""
) -> HttpResponse:
    if wants_json(request):
        return result_json(result)
    return _page(request, case_ref, case, result, done)


@require_GET
def case_review(request: HttpRequest, case_ref: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return _page(request, case_ref, _provider_case(request, case_ref))


@require_POST
def case_action(request: HttpRequest, case_ref: str) -> HttpResponse:
    """Form fields ``action`` (approve/revise), ``acceptance_screenshot``, ``comment``."""
    if not request.user.is_authenticated:
        if wants_json(request):
            return JsonResponse({"ok": False, "errors": ["Sign in first."]}, status=403)
        return redirect_to_login(request.get_full_path())
    case = _provider_case(request, case_ref)
    if outbound_paused():  # approve stores only, but the provider acts again later anyway
        return _answer(request, case_ref, case, AlignResult(503, [PAUSED_MESSAGE]))
    action = request.POST.get("action", "")
    if action == APPROVE:
        try:
            approve_treatment_plan(
                case, request.POST.get("acceptance_screenshot", ""), user=request.user
            )
        except ScreenshotRejected as problem:
            return _answer(request, case_ref, case, AlignResult(400, [str(problem)]))
        return _answer(
            request,
            case_ref,
            case,
            AlignResult.success(),
            "Approved. The plan is accepted at Align once aligners are bought.",
        )
    if action == REVISE:
        if not flag_is_active(request, FLAG):
            raise Http404("Revision requests are switched off.")
        comment = request.POST.get("comment", "")
        try:
            result = Align().set_case_status(request.user, case, REVISE, comment=comment)
        except OutboundPaused as paused:
            result = AlignResult(paused.status_code, [str(paused)])
        if result.ok:
            AlignCase.objects.filter(case=case).update(awaiting_provider_review=False)
        return _answer(request, case_ref, case, result, "Revision requested from Align.")
    return _answer(
        request, case_ref, case, AlignResult(400, ["action must be 'approve' or 'revise'."])
    )
