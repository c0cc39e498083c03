"""The ``health`` endpoint: the cheap ``align_doctor`` checks as JSON, for monitoring.

``GET`` answers 200 when no check failed and 503 otherwise, with every check's state and
detail.  It never calls Align or iTero: Align's reachability is the one the app's own
last call showed.  Readable by staff (a logged-in ``is_staff`` user) or by a request
whose ``X-Align-Health-Token`` header equals the ``HEALTH_TOKEN`` setting (compared in
constant time; an empty setting disables header access).  Anyone else gets 403: the
endpoint's existence is no secret, and a monitor with a wrong token should say so.
"""

from __future__ import annotations

import hmac
import logging

from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe

from align_integration.conf import get_setting
from align_integration.health import probe

logger = logging.getLogger("align_integration.health")

TOKEN_HEADER = "X-Align-Health-Token"  # noqa: S105 - a header name, not a secret


def token_matches(presented: str | None) -> bool:
    """Whether ``presented`` is the configured ``HEALTH_TOKEN`` (never, when that is empty)."""
    expected = str(get_setting("HEALTH_TOKEN") or "")
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def may_read(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    return token_matches(request.headers.get(TOKEN_HEADER))


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    if not may_read(request):
        response = JsonResponse({"error": "staff or the health token only"}, status=403)
    else:
        report = probe()
        response = JsonResponse(report.as_dict(), status=200 if report.healthy else 503)
        if not report.healthy:
            failed = ",".join(result.name for result in report.results if not result.passed)
            logger.warning("health=unhealthy failed=%s", failed)
    add_never_cache_headers(response)
    return response
