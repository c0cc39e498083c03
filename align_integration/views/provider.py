"""Provider portal: the treatment-plan page, and approve / revise.

Only the case's provider (``CaseAdapter.provider_can_act``) sees the page or acts; anyone
else gets 404 and nothing is sent to Align.  Approve stores the html2canvas screenshot as
the acceptance asset (the ClinCheck accept itself is sent when aligners are bought);
revise sends the revision request at once, behind the ``set-align-order-status`` flag.
Both act only on the plan that awaits review, the one the form names (409 otherwise), and
at most ``PROVIDER_ACTION_LIMIT`` times per case in a window (429): see
``workflows.clincheck.plan_review``.  While outbound traffic is paused (switch
``align-outbound-paused``) both answer 503 and nothing is stored or sent.
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
from align_integration.workflows.clincheck import APPROVE, FLAG, REVISE
from align_integration.workflows.clincheck.plan_review import (
    PlanChoice,
    ReviewRefused,
    approve_plan,
    request_revision,
    take_action_slot,
)
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
    if action not in (APPROVE, REVISE):
        return _answer(
            request, case_ref, case, AlignResult(400, ["action must be 'approve' or 'revise'."])
        )
    if action == REVISE and not flag_is_active(request, FLAG):
        raise Http404("Revision requests are switched off.")
    try:
        take_action_slot(case)
        choice = PlanChoice.from_form(request.POST)
        if action == APPROVE:
            screenshot = request.POST.get("acceptance_screenshot", "")
            approve_plan(
                case,
                choice,
                lambda: Align().create_acceptance_screenshot(case, screenshot, user=request.user),
                user=request.user,
            )
            return _answer(
                request,
                case_ref,
                case,
                AlignResult.success(),
                "Approved. The plan is accepted at Align once aligners are bought.",
            )
        comment = request.POST.get("comment", "")
        result = request_revision(
            case,
            choice,
            lambda: Align().set_case_status(request.user, case, REVISE, comment=comment),
        )
        return _answer(request, case_ref, case, result, "Revision requested from Align.")
    except ScreenshotRejected as problem:
        return _answer(request, case_ref, case, AlignResult(400, [str(problem)]))
    except OutboundPaused as paused:  # switched on meanwhile: the plan awaits review again
        return _answer(request, case_ref, case, AlignResult(paused.status_code, [str(paused)]))
    except ReviewRefused as refusal:
        response = _answer(request, case_ref, case, refusal.result())
        if refusal.retry_after is not None:
            response["Retry-After"] = str(refusal.retry_after)
        return response
