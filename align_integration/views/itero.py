"""iTero lab connector endpoints: sign-in and pairing pages for staff, and the scan
notification webhook for iTero.

Thin: each view parses and authorises, calls a flow in ``align_integration.workflows.itero``
and answers.  Bad input is a 4xx with a reason, never a 500.  The notification URL carries
a secret path segment (``ITERO["NOTIFICATION_TOKEN"]``, compared in constant time); its
answers are logged here without the path, so the secret never reaches a log.  While
outbound traffic is paused (switch ``align-outbound-paused``) connect, sign-in, pair and
un-pair answer 503 and call nothing; notifications are still stored.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from align_integration.client.errors import AlignConfigurationError, AlignError
from align_integration.client.itero import IteroUnsafeURL
from align_integration.conf import get_setting
from align_integration.models import IteroConnection, IteroScan
from align_integration.outbound import OutboundPaused
from align_integration.workflows.itero.connection import IteroNotPaired
from align_integration.workflows.itero.notifications import store_notification
from align_integration.workflows.itero.pairing import (
    UnknownLabAccount,
    complete_authorization,
    login_redirect_url,
    pair_account,
    unpair_account,
)

logger = logging.getLogger("align_integration.itero")

STATE_SESSION_KEY = "align_integration.itero.oauth_state"
ACCOUNTS_SESSION_KEY = "align_integration.itero.accounts"
NOTIFICATION_MAX_BYTES = 16 * 1024
MAX_FIELD = 128
TEMPLATES = "align_integration/itero/"


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in staff only: others go to the login page (or get 403 when signed in)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            return _error_page(request, "Only staff can manage the iTero connection.", 403)
        return view(request, *args, **kwargs)

    return wrapped


def _error_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, TEMPLATES + "error.html", {"message": message}, status=status)


def _urls(request: HttpRequest) -> dict[str, str]:
    return {
        "callback": request.build_absolute_uri(reverse("align_integration:itero-oauth-callback")),
        "status": reverse("align_integration:itero-status"),
    }


# -- staff pages ------------------------------------------------------------------------------
@staff_required
@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """Send the browser to iTero's login page, with a fresh ``state`` kept in the session."""
    state = secrets.token_urlsafe(32)
    try:
        url = login_redirect_url(redirect_uri=_urls(request)["callback"], state=state)
    except AlignConfigurationError as error:
        return _error_page(request, f"The iTero connector is not configured: {error}", 503)
    except OutboundPaused as paused:
        return _error_page(request, str(paused), paused.status_code)
    request.session[STATE_SESSION_KEY] = state
    return HttpResponseRedirect(url)


@staff_required
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Back from iTero: check ``state``, exchange the code, run Discovery, list accounts."""
    expected = str(request.session.pop(STATE_SESSION_KEY, "") or "")
    state = str(request.GET.get("state") or "")
    if not expected or not hmac.compare_digest(expected.encode(), state.encode()):
        return _error_page(request, "The sign-in did not match this session; start again.", 400)
    if request.GET.get("error"):
        return _error_page(request, "iTero sign-in was cancelled or refused.", 400)
    code = str(request.GET.get("code") or "")
    if not code or len(code) > 2048:
        return _error_page(request, "iTero sent no authorization code; start again.", 400)
    try:
        accounts = complete_authorization(code, _urls(request)["callback"])
    except OutboundPaused as paused:
        return _error_page(request, str(paused), paused.status_code)
    except IteroUnsafeURL as error:
        return _error_page(request, f"iTero sign-in stopped: {error}", 502)
    except AlignError as error:
        logger.warning("itero_signin outcome=failed status=%s", error.status_code or "-")
        return _error_page(request, f"iTero sign-in failed ({error.http_status}).", 502)
    request.session[ACCOUNTS_SESSION_KEY] = accounts
    return render(request, TEMPLATES + "accounts.html", {"accounts": accounts})


@staff_required
@require_POST
def pair(request: HttpRequest) -> HttpResponse:
    """Pair with the chosen lab account, giving the notification URL as callback."""
    account_number = str(request.POST.get("account_number") or "").strip()
    if not account_number or len(account_number) > 64:
        return _error_page(request, "Choose a lab account to pair with.", 400)
    token = str(get_setting("ITERO", "NOTIFICATION_TOKEN") or "")
    if not token:
        return _error_page(request, "ITERO['NOTIFICATION_TOKEN'] is not set.", 503)
    callback_url = request.build_absolute_uri(
        reverse("align_integration:itero-notifications", kwargs={"token": token})
    )
    try:
        connection = pair_account(account_number, callback_url, user=request.user)
    except UnknownLabAccount:
        return _error_page(request, "That account is not one you may pair with.", 400)
    except IteroNotPaired:
        return _error_page(request, "Sign in to iTero first (Connect).", 409)
    except OutboundPaused as paused:
        return _error_page(request, str(paused), paused.status_code)
    except AlignError as error:
        logger.warning("itero_pair outcome=failed status=%s", error.status_code or "-")
        return _error_page(request, f"Pairing failed: iTero answered {error.http_status}.", 502)
    request.session.pop(ACCOUNTS_SESSION_KEY, None)
    messages.success(request, f"Paired with iTero lab account {connection.account_number}.")
    return redirect("align_integration:itero-status")


@staff_required
@require_http_methods(["GET", "POST"])
def unpair(request: HttpRequest) -> HttpResponse:
    """GET: the warning and a confirm button.  POST: un-pair at iTero and log out."""
    connection = IteroConnection.load()
    if request.method == "GET":
        return render(request, TEMPLATES + "unpair.html", {"connection": connection})
    try:
        connection, confirmed = unpair_account(user=request.user)
    except OutboundPaused as paused:
        return _error_page(request, str(paused), paused.status_code)
    except AlignError as error:
        logger.warning("itero_unpair outcome=failed status=%s", error.status_code or "-")
        return _error_page(request, f"Un-pairing failed: iTero answered {error.http_status}.", 502)
    if confirmed:
        messages.success(request, "Un-paired from iTero; scan notifications have stopped.")
    else:
        messages.warning(request, "The pairing was dropped here only (iTero was not reachable).")
    return redirect("align_integration:itero-status")


@staff_required
@require_GET
def connection_status(request: HttpRequest) -> HttpResponse:
    """Pairing state, the needs-re-pairing banner, the scans waiting for staff."""
    connection = IteroConnection.load()
    context = {
        "connection": connection,
        "waiting_scans": IteroScan.objects.filter(state=IteroScan.WAITING_FOR_CASE).count(),
        "failed_scans": IteroScan.objects.filter(state=IteroScan.FAILED).count(),
        "pending_scans": IteroScan.objects.filter(
            state__in=[IteroScan.PENDING, IteroScan.DOWNLOADING]
        ).count(),
        "configured": bool(get_setting("ITERO", "CLIENT_ID")),
    }
    return render(request, TEMPLATES + "status.html", context)


# -- the webhook ------------------------------------------------------------------------------
def _quiet(response: HttpResponse, outcome: str) -> HttpResponse:
    """Log our own line and tell Django not to log the path (it holds the secret token)."""
    response._has_been_logged = True  # type: ignore[attr-defined]
    logger.info("itero_notification status=%d outcome=%s", response.status_code, outcome)
    return response


def _reject(status: int, reason: str, outcome: str) -> HttpResponse:
    return _quiet(JsonResponse({"status": "rejected", "reason": reason}, status=status), outcome)


def _field(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_FIELD and text.isprintable() else None


@csrf_exempt
def receive_notification(request: HttpRequest, token: str) -> HttpResponse:
    """iTero's scan notification: ``{"rxId", "accountNumber"}``, stored for the worker."""
    expected = str(get_setting("ITERO", "NOTIFICATION_TOKEN") or "")
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return _quiet(HttpResponse("Not Found", status=404), "bad_token")
    if request.method != "POST":
        return _quiet(HttpResponseNotAllowed(["POST"]), "bad_method")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _reject(400, "invalid Content-Length", "bad_length")
    if declared > NOTIFICATION_MAX_BYTES:
        return _reject(413, f"body over {NOTIFICATION_MAX_BYTES} bytes", "too_large")
    body = request.read(NOTIFICATION_MAX_BYTES + 1)
    if len(body) > NOTIFICATION_MAX_BYTES:
        return _reject(413, f"body over {NOTIFICATION_MAX_BYTES} bytes", "too_large")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _reject(400, "body is not JSON", "bad_json")
    if not isinstance(payload, dict):
        return _reject(400, "body must be a JSON object", "bad_json")
    rx_id, account_number = _field(payload, "rxId"), _field(payload, "accountNumber")
    if rx_id is None:
        return _reject(400, "rxId: required, a non-empty string", "bad_fields")
    if account_number is None:
        return _reject(400, "accountNumber: required, a non-empty string", "bad_fields")
    notification = store_notification(rx_id, account_number)
    if notification is None:
        return _quiet(JsonResponse({"status": "ignored"}, status=202), "ignored")
    return _quiet(JsonResponse({"status": "stored"}, status=202), "stored")
