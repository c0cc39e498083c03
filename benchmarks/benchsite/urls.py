"""The app's callbacks endpoint, and the baseline: a bare view that only inserts the row."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from align_integration.models import CallbackEvent


@csrf_exempt
def bare_insert(request: HttpRequest) -> HttpResponse:
    CallbackEvent.objects.bulk_create(
        [
            CallbackEvent(
                webhook_id=request.headers.get("webhook-id", ""),
                event_type="bare",
                state=CallbackEvent.PROCESSED,  # nothing for align_worker to pick up
                body=request.body.decode(),
            )
        ],
        ignore_conflicts=True,
    )
    return HttpResponse(status=200)


urlpatterns = [
    path("align/", include("align_integration.urls")),
    path("bare/", bare_insert),
]
