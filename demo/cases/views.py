"""The demo's own pages: home, the staff and provider case lists, the staff case page, and
a few staff actions.

The staff case page embeds the app's panel (``{% align_panel case %}``) above the
prescription, where the old tool showed it; the provider review is the app's own page.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from align_integration.models import AlignCase, CaseAsset, CaseEvent
from align_integration.signals import aligners_purchased
from cases.models import Case, Patient

staff_only = staff_member_required(login_url="login")


def _panel_url(case: Case) -> str:
    return reverse("align_integration:staff-align-panel", kwargs={"case_ref": str(case.uuid)})


def _case_url(case: Case) -> str:
    return reverse("staff-case", kwargs={"case_uuid": case.uuid})


def _align_states(cases: list[Case]) -> dict[int, AlignCase]:
    return {state.case_id: state for state in AlignCase.objects.filter(case__in=cases)}


def home(request: HttpRequest) -> HttpResponse:
    """What the demo shows and where to click."""
    return render(request, "demo/home.html", {"sandbox_url": settings.SANDBOX_URL})


@staff_only
def staff_cases(request: HttpRequest) -> HttpResponse:
    """Every case with its eligibility and Align status, linking to the app's staff panel."""
    cases = list(
        Case.objects.select_related("patient", "prescription", "photo_assessment").order_by(
            "case_number"
        )
    )
    states = _align_states(cases)
    rows: list[dict[str, Any]] = [
        {
            "case": case,
            "eligibility": case.can_send_to_align,
            "state": states.get(case.pk),
            "sales_order_number": case.align_sales_order_number,
            "panel_url": _panel_url(case),
            "case_url": _case_url(case),
        }
        for case in cases
    ]
    return render(request, "demo/staff_cases.html", {"rows": rows, "genders": Patient.GENDERS})


@staff_only
def staff_case(request: HttpRequest, case_uuid: str) -> HttpResponse:
    """The staff portal's case page: the Align panel above the prescription (as the old
    tool had it), embedded with ``{% align_panel case %}``."""
    case = get_object_or_404(
        Case.objects.select_related("patient", "prescription__provider", "photo_assessment"),
        uuid=case_uuid,
    )
    assets = CaseAsset.objects.current().filter(case=case).order_by("kind", "pk")
    return render(request, "demo/case.html", {"case": case, "assets": assets})


@staff_only
@require_POST
def set_gender(request: HttpRequest, case_uuid: str) -> HttpResponse:
    """Set the patient's gender (the old portal's way to fix "unknown" before sending)."""
    case = get_object_or_404(Case.objects.select_related("patient"), uuid=case_uuid)
    gender = request.POST.get("gender", "")
    if gender not in dict(Patient.GENDERS):
        return HttpResponseBadRequest("gender must be M, F or U")
    case.patient.gender = gender
    case.patient.save(update_fields=["gender"])
    messages.success(
        request, f"Case {case.case_number}: gender set to {case.patient.get_gender_display()}."
    )
    return redirect("staff-cases")


@staff_only
@require_POST
def mark_aligners_bought(request: HttpRequest, case_uuid: str) -> HttpResponse:
    """The host's purchase hook: tell the app, which sends the ClinCheck accept to Align."""
    case = get_object_or_404(Case, uuid=case_uuid)
    last_before = CaseEvent.objects.filter(case=case).order_by("-pk").values_list("pk", flat=True)
    newest_before = last_before.first() or 0
    aligners_purchased.send(sender=Case, case=case, user=request.user, request=request)
    new_events = list(CaseEvent.objects.filter(case=case, pk__gt=newest_before).order_by("pk"))
    if not new_events:
        messages.info(request, f"Case {case.case_number}: aligners bought; nothing was sent.")
    for event in new_events:
        level = messages.ERROR if event.outcome == CaseEvent.FAILED else messages.SUCCESS
        messages.add_message(
            request,
            level,
            f"Aligners bought — {event.action}: {event.get_outcome_display()}. {event.message}",
        )
    return redirect(_case_url(case))


@staff_only
@require_POST
def take_itero_scan(request: HttpRequest, case_uuid: str) -> HttpResponse:
    """Play the clinic: the sandbox's iTero takes a scan of this patient and notifies us.

    The notification reaches the app's ``itero-notifications`` URL; ``align_worker``
    confirms the order, downloads the scan and puts its STL files on the case.
    """
    case = get_object_or_404(Case.objects.select_related("patient"), uuid=case_uuid)
    try:
        response = requests.post(
            f"{settings.SANDBOX_URL}/__sandbox__/itero/scans",
            json={"chart_number": case.patient.medical_record_number},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException:
        messages.error(request, "The sandbox did not answer; is it running?")
    else:
        messages.success(
            request,
            f"Case {case.case_number}: iTero scan taken. Its STL files appear on the case "
            "within a few seconds (the worker downloads them); reload this page.",
        )
    return redirect("staff-cases")


@login_required
def provider_cases(request: HttpRequest) -> HttpResponse:
    """The logged-in provider's cases, linking to the app's treatment-plan review page."""
    cases = list(
        Case.objects.filter(prescription__provider__user=request.user)
        .select_related("patient")
        .order_by("case_number")
    )
    states = _align_states(cases)
    rows = [{"case": case, "state": states.get(case.pk)} for case in cases]
    is_provider = hasattr(request.user, "provider")
    return render(request, "demo/provider_cases.html", {"rows": rows, "is_provider": is_provider})
