"""Small pieces every view shares: finding the case, and answering in JSON when asked."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse

from align_integration.adapters import get_adapter
from align_integration.workflows.results import AlignResult


def case_or_404(case_ref: str) -> Any:
    try:
        return get_adapter().get_case(case_ref)
    except LookupError:
        raise Http404("No case with that reference.") from None


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        "application/json" in accept
        or request.GET.get("format") == "json"
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def result_json(result: AlignResult) -> JsonResponse:
    return JsonResponse({"ok": result.ok, "errors": list(result.errors)}, status=result.status_code)
