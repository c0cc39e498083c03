"""Provider portal: the treatment-plan page, and approve / revise.

Only the case's provider (``CaseAdapter.provider_can_act``) sees the page or acts; anyone
else gets 404 and nothing is sent to Align.  Approve stores the html2canvas screenshot as
the acceptance asset (the ClinCheck accept itself is sent when aligners are bought);
revise sends the revision request at once, behind the ``set-align-order-status`` flag.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from waffle import flag_is_active

from align_integration.adapters import get_adapter
from align_integration.facade import Align
from align_integration.models import AlignCase, CaseEvent
from align_integration.views.common import case_or_404, result_json, wants_json
from align_integration.workflows.clincheck import APPROVE, FLAG, REVISE
from align_integration.workflows.clincheck.screenshots import ScreenshotRejected
from align_integration.workflows.results import AlignResult
from align_integration.workflows.timeline import record


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
    action = request.POST.get("action", "")
    if action == APPROVE:
        try:
            with transaction.atomic():
                record(
                    case,
                    "provider_approved",
                    CaseEvent.INFO,
                    "The provider approved the treatment plan.",
                    user=request.user,
                )
                AlignCase.objects.filter(case=case).update(awaiting_provider_review=False)
                # Last, so nothing after it can roll back a row whose file is stored.
                Align().create_acceptance_screenshot(
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
        result = Align().set_case_status(request.user, case, REVISE, comment=comment)
        if result.ok:
            AlignCase.objects.filter(case=case).update(awaiting_provider_review=False)
        return _answer(request, case_ref, case, result, "Revision requested from Align.")
    return _answer(
        request, case_ref, case, AlignResult(400, ["action must be 'approve' or 'revise'."])
    )
