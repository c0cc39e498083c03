"""OAuth 2 of the iTero lab API: login page, authorization code, token, refresh, revoke.

Codes are single-use and bound to the ``redirect_uri`` of the login; refresh tokens rotate
(the old one is void once used). A token set belongs to a *lineage* that survives rotation,
so that pairing again can answer with the lineage's current token set, and so that the
lab API can tell which pairing (lab account) an access token was issued for.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from .wire import ApiError, ApiRequest, Route, json_reply, redirect_reply

CODE_TTL = 600.0


def _oauth_error(error: str) -> ApiError:
    return ApiError(400, payload={"error": error})


class IteroAuth:
    """The iTero OAuth server state: codes, access tokens, refresh tokens and their lineages."""

    def __init__(self, client_id: str, client_secret: str, token_ttl: float = 3600) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._codes: dict[str, tuple[str, float]] = {}  # code -> (redirect_uri, expires at)
            self._access: dict[str, tuple[float, str]] = {}  # access token -> (expires, lineage)
            self._refresh: dict[str, str] = {}  # refresh token -> lineage
            self._current: dict[str, dict[str, Any]] = {}  # lineage -> its newest token set

    def expire_tokens(self) -> None:
        """Every access token issued so far becomes invalid (refresh tokens stay usable)."""
        with self.lock:
            self._access.clear()

    def issue(self, lineage: str | None = None) -> tuple[dict[str, Any], str]:
        """A new token set, in ``lineage`` or a new one; returns the set and its lineage."""
        lineage = lineage or secrets.token_hex(8)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        token_set: dict[str, Any] = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(self.token_ttl),
            "token_type": "Bearer",
        }
        with self.lock:
            self._access[access] = (time.time() + self.token_ttl, lineage)
            self._refresh[refresh] = lineage
            self._current[lineage] = token_set
        return dict(token_set), lineage

    def current(self, lineage: str) -> dict[str, Any] | None:
        with self.lock:
            token_set = self._current.get(lineage)
        return dict(token_set) if token_set else None

    def authorize(self, request: ApiRequest) -> str:
        """The lineage of the request's live access token; a 401 when it carries none."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            found = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or found[0] <= time.time():
            raise ApiError(401, "invalid token")
        return found[1]

    def routes(self) -> list[Route]:
        return [
            Route("itero_login", "GET", "/itero/login", self.login),
            Route("itero_token", "POST", "/oauth/token", self.token),
            Route("itero_revoke", "POST", "/oauth/revoke", self.revoke),
        ]

    def _client_ok(self, form: dict[str, str]) -> bool:
        ok_id = secrets.compare_digest(form.get("client_id", ""), self.client_id)
        return ok_id & secrets.compare_digest(form.get("client_secret", ""), self.client_secret)

    # --- handlers ---------------------------------------------------------------------------

    def login(self, request: ApiRequest, params: dict[str, str]) -> Response:
        """The login page: the sandbox user is always signed in, so it redirects at once."""
        redirect_uri = request.arg("redirect_uri")
        if request.arg("client_id") != self.client_id:
            raise ApiError(400, "unknown client_id")
        if request.arg("response_type") != "code":
            raise ApiError(400, "response_type must be code")
        if not redirect_uri:
            raise ApiError(400, "redirect_uri required")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self._codes[code] = (redirect_uri, time.time() + CODE_TTL)
        answer = {"code": code}
        state = request.arg("state")
        if state is not None:
            answer["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return redirect_reply(f"{redirect_uri}{separator}{urlencode(answer)}")

    def token(self, request: ApiRequest, params: dict[str, str]) -> Response:
        form = request.form_or_none
        if form is None:
            raise _oauth_error("invalid_request")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                # Single use: a code is spent by any attempt, right or wrong.
                redirect_uri, expires_at = self._codes.pop(form.get("code", ""), ("", 0.0))
            if (
                not redirect_uri
                or expires_at <= time.time()
                or form.get("redirect_uri") != redirect_uri
            ):
                raise _oauth_error("invalid_grant")
            if not self._client_ok(form):
                raise _oauth_error("invalid_grant")
            token_set, _ = self.issue()
            return json_reply(200, token_set)
        if grant_type == "refresh_token":
            if not self._client_ok(form):
                raise _oauth_error("invalid_grant")
            with self.lock:
                lineage = self._refresh.pop(form.get("refresh_token", ""), None)
            if lineage is None:
                raise _oauth_error("invalid_grant")
            token_set, _ = self.issue(lineage)
            return json_reply(200, token_set)
        raise _oauth_error("unsupported_grant_type")

    def revoke(self, request: ApiRequest, params: dict[str, str]) -> Response:
        """Log-out: the given access or refresh token stops working; unknown tokens are fine."""
        token = (request.form_or_none or {}).get("token", "")
        with self.lock:
            self._access.pop(token, None)
            self._refresh.pop(token, None)
        return json_reply(200, {})
