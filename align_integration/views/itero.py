"""iTero lab connector endpoints: sign-in and pairing pages for staff (several lab
accounts may be paired at once; un-pairing names the account), and the scan notification
webhook for iTero.

Thin: each view parses and authorises, calls a flow in ``align_integration.workflows.itero``
and answers.  Bad input is a 4xx with a reason, never a 500.  Signing in, pairing and
un-pairing need ``is_staff`` and the permission ``align_integration.manage_itero_connection``
(403 without it); the status page needs ``is_staff`` only.  While outbound traffic is
paused (switch ``align-outbound-paused``) connect, sign-in, pair and un-pair answer 503
and call nothing; notifications are still stored.

The notification URL carries a secret path segment (``ITERO["NOTIFICATION_TOKEN"]``,
compared in constant time).  Its view is an :class:`~.inbound.InboundView`: every answer,
and every failure of ours, is logged here without the path, so the secret never reaches a
log; a flood is bounded by the flow (one pending row per Rx id, a cap on pending rows:
503 with ``Retry-After`` beyond it).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from align_integration.client.errors import AlignConfigurationError, AlignError
from align_integration.client.itero import IteroUnsafeURL
from align_integration.conf import get_setting
from align_integration.models import IteroConnection, IteroScan
from align_integration.outbound import OutboundPaused
from align_integration.views.inbound import (
    BadRequest,
    InboundRejected,
    InboundView,
    NotFound,
    Unavailable,
    Validator,
)
from align_integration.workflows.itero.connection import IteroNotPaired
from align_integration.workflows.itero.notifications import (
    NotificationBacklogFull,
    accept_notification,
)
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
MANAGE_PERMISSION = "align_integration.manage_itero_connection"

ViewFunction = Callable[..., HttpResponse]


def staff_required(view: ViewFunction, permission: str | None = None) -> ViewFunction:
    """Signed-in staff only (holding ``permission`` when given): anonymous visitors go to
    the login page, signed-in users without the rights get 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            return _error_page(request, "Only staff can manage the iTero connection.", 403)
        if permission is not None and not user.has_perm(permission):
            message = f"Managing the iTero connection needs the permission {permission}."
            return _error_page(request, message, 403)
        return view(request, *args, **kwargs)

    return wrapped


def connection_managers_only(view: ViewFunction) -> ViewFunction:
    """Staff holding ``align_integration.manage_itero_connection`` (superusers do)."""
    return staff_required(view, MANAGE_PERMISSION)


def _error_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, TEMPLATES + "error.html", {"message": message}, status=status)


def public_url(request: HttpRequest, path: str) -> str:
    """``path`` on this site as iTero and browsers reach it: on ``ITERO["PUBLIC_URL"]``
    when set (check E013 requires an https one outside DEBUG), else on the request's host."""
    base = str(get_setting("ITERO", "PUBLIC_URL") or "").rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def _urls(request: HttpRequest) -> dict[str, str]:
    return {
        "callback": public_url(request, reverse("align_integration:itero-oauth-callback")),
        "status": reverse("align_integration:itero-status"),
    }


# -- staff pages ------------------------------------------------------------------------------
@connection_managers_only
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


@connection_managers_only
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
    return _accounts_page(request, accounts)


def _accounts_page(request: HttpRequest, accounts: list[dict[str, str]]) -> HttpResponse:
    paired = set(IteroConnection.objects.paired().values_list("account_number", flat=True))
    listed = [{**account, "paired": account["account_number"] in paired} for account in accounts]
    return render(request, TEMPLATES + "accounts.html", {"accounts": listed})


@connection_managers_only
@require_POST
def pair(request: HttpRequest) -> HttpResponse:
    """Pair with the chosen lab account, giving the notification URL as callback."""
    account_number = str(request.POST.get("account_number") or "").strip()
    if not account_number or len(account_number) > 64:
        return _error_page(request, "Choose a lab account to pair with.", 400)
    token = str(get_setting("ITERO", "NOTIFICATION_TOKEN") or "")
    if not token:
        return _error_page(request, "ITERO['NOTIFICATION_TOKEN'] is not set.", 503)
    callback_url = public_url(
        request, reverse("align_integration:itero-notifications", kwargs={"token": token})
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


@connection_managers_only
@require_http_methods(["GET", "POST"])
def unpair(request: HttpRequest, account_number: str) -> HttpResponse:
    """GET: the warning and a confirm button.  POST: un-pair that lab account at iTero and
    log out its tokens; the other paired accounts go on."""
    connection = IteroConnection.for_account(account_number[:64])
    if connection is None:
        return _error_page(request, "There is no pairing with that lab account.", 404)
    if request.method == "GET":
        return render(request, TEMPLATES + "unpair.html", {"connection": connection})
    try:
        connection, confirmed = unpair_account(connection.account_number, user=request.user)
    except OutboundPaused as paused:
        return _error_page(request, str(paused), paused.status_code)
    except UnknownLabAccount:
        return _error_page(request, "There is no pairing with that lab account.", 404)
    except AlignError as error:
        logger.warning("itero_unpair outcome=failed status=%s", error.status_code or "-")
        return _error_page(request, f"Un-pairing failed: iTero answered {error.http_status}.", 502)
    number = connection.account_number
    if confirmed:
        messages.success(
            request, f"Un-paired lab account {number}; its scan notifications have stopped."
        )
    else:
        messages.warning(
            request, f"The pairing of lab account {number} was dropped here only (no usable token)."
        )
    return redirect("align_integration:itero-status")


@staff_required
@require_GET
def connection_status(request: HttpRequest) -> HttpResponse:
    """Each lab account's pairing state, the needs-re-pairing banner, the scans waiting."""
    accounts = list(IteroConnection.objects.lab_accounts())
    sign_in = IteroConnection.objects.filter(account_number="").first()
    context = {
        "accounts": accounts,
        "paired_count": sum(1 for row in accounts if row.state == IteroConnection.PAIRED),
        "needs_repairing": [
            row for row in accounts if row.state == IteroConnection.NEEDS_REPAIRING
        ],
        "signed_in": sign_in is not None and sign_in.state == IteroConnection.AUTHORIZED,
        "waiting_scans": IteroScan.objects.filter(state=IteroScan.WAITING_FOR_CASE).count(),
        "failed_scans": IteroScan.objects.filter(state=IteroScan.FAILED).count(),
        "pending_scans": IteroScan.objects.filter(
            state__in=[IteroScan.PENDING, IteroScan.DOWNLOADING]
        ).count(),
        "configured": bool(get_setting("ITERO", "CLIENT_ID")),
    }
    return render(request, TEMPLATES + "status.html", context)


# -- the webhook ------------------------------------------------------------------------------
def _field(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_FIELD and text.isprintable() else None


class NotificationView(InboundView):
    """iTero's scan notification: ``{"rxId", "accountNumber"}``, stored for the worker.

    A wrong token answers a bare 404 (as if the URL did not exist), before the method is
    even looked at.
    """

    log_name = "itero_notification"
    logger = logger

    rx_id: str
    account_number: str

    def get_validators(self) -> Sequence[Validator]:
        return [self.check_token, self.check_method, self.check_body]

    def check_token(self, request: HttpRequest) -> None:
        expected = str(get_setting("ITERO", "NOTIFICATION_TOKEN") or "")
        token = str(self.kwargs.get("token") or "")
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            raise NotFound("bad token")

    def check_body(self, request: HttpRequest) -> None:
        body = self.read_body(request, NOTIFICATION_MAX_BYTES)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("body is not JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest("body must be a JSON object")
        rx_id, account_number = _field(payload, "rxId"), _field(payload, "accountNumber")
        if rx_id is None:
            raise BadRequest("rxId: required, a non-empty string")
        if account_number is None:
            raise BadRequest("accountNumber: required, a non-empty string")
        self.rx_id, self.account_number = rx_id, account_number

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            receipt = accept_notification(self.rx_id, self.account_number)
        except NotificationBacklogFull:
            retry_after = str(int(get_setting("ITERO", "POLL_INTERVAL")))
            raise Unavailable(
                "too many notifications are waiting; retry later",
                headers={"Retry-After": retry_after},
            ) from None
        return self.answer({"status": receipt.outcome}, 202, receipt.outcome)

    def rejection(self, rejected: InboundRejected) -> HttpResponse:
        if isinstance(rejected, NotFound):  # say nothing about the endpoint
            return HttpResponse("Not Found", status=404, content_type="text/plain")
        return JsonResponse(
            {"status": "rejected", "reason": rejected.reason}, status=rejected.status
        )

    def failure(self) -> HttpResponse:
        return JsonResponse({"status": "error", "reason": "internal error"}, status=500)


receive_notification = NotificationView.as_endpoint()
