"""HTTP client of the iTero lab API (Align's generic API for labs; protocols/itero-lab-api.md).

OAuth (code exchange, refresh, revoke), Discovery, accounts, pair / un-pair, Get Orders,
order by Rx id, the streamed download and return scan.  HTTP only: the tokens' storage and
the pairing state belong to ``align_integration.workflows.itero``.

Every URL is checked before a request leaves (:func:`check_url`): https on a host named in
``ITERO["ALLOWED_HOSTS"]``, or plain http to a loopback host that is itself listed.  A URL
that fails is refused with :class:`IteroUnsafeURL` before any token or secret is sent.
Discovery is the only source of endpoint URLs; ``ITERO["PATHS"]`` on ``BASE_URL`` is the
fallback.  Redirects are never followed.

Retries: only GETs are retried in-request (the lab API publishes no idempotency scheme), so
an OAuth grant, pair, un-pair or return scan whose answer is lost is never sent twice; the
workflows decide what to do next.  Sessions, the 401 loop and bounded reads come from
:class:`~align_integration.client.http.BaseClient`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from align_integration.client.errors import (
    AlignConfigurationError,
    AlignConnectionError,
    AlignError,
    AlignRequestRejected,
)
from align_integration.client.http import BaseClient
from align_integration.client.retry import retry_from_settings
from align_integration.client.token import TokenCache
from align_integration.conf import get_setting

ENDPOINT_NAMES = ("accounts", "pair", "unpair", "orders", "order", "download", "return_scan")
ASSET_TYPES = ("ide", "thumbnails", "screenshots")
LOOPBACK_NAMES = {"localhost"}
DOWNLOAD_CHUNK = 1024 * 1024


class IteroUnsafeURL(AlignConfigurationError, AlignError):
    """A URL is not https on an allowed host: nothing was sent to it.

    Both a configuration error (``ImproperlyConfigured``: the setting, or ``ALLOWED_HOSTS``,
    is what to fix) and an :class:`AlignError` (Discovery, a remote answer, may name such a
    URL at run time; the workflows then treat it as a failed, not retryable, call).
    """


class IteroOAuthError(AlignRequestRejected):
    """The OAuth server refused a grant (``error`` holds its code, e.g. ``invalid_grant``)."""

    def __init__(self, message: str, *, error: str, status_code: int, request_id: str = "") -> None:
        super().__init__(message, status_code=status_code, errors=[error], request_id=request_id)
        self.error = error

    @property
    def permanent(self) -> bool:
        """The grant will never work again: the user must sign in and pair again."""
        return self.status_code == 401 or self.error in ("invalid_grant", "invalid_client")


class IteroDownloadIncomplete(AlignConnectionError):
    """The download stopped before ``Content-Length`` bytes arrived; nothing was kept."""


class IteroDownloadTooLarge(AlignRequestRejected):
    """The archive is larger than ``ITERO["MAX_ZIP_BYTES"]``."""


@dataclass(frozen=True)
class TokenSet:
    """An OAuth token answer.  Its repr never shows the tokens."""

    access_token: str
    refresh_token: str
    expires_in: int

    def __repr__(self) -> str:
        return f"TokenSet(<redacted>, expires_in={self.expires_in})"

    __str__ = __repr__


@dataclass(frozen=True)
class Discovery:
    region: str
    endpoints: dict[str, str]


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(host: str, allowed_hosts: list[str] | tuple[str, ...]) -> bool:
    """``".example.com"`` allows that domain and its subdomains; other entries are exact."""
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = str(entry).lower().strip().rstrip(".")
        if not entry:
            continue
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def check_url(url: str, allowed_hosts: list[str] | tuple[str, ...] | None = None) -> str:
    """``url`` if it may receive our tokens, else :class:`IteroUnsafeURL` (the URL not echoed
    whole: only its scheme and host, which are what is wrong)."""
    allowed = list(
        get_setting("ITERO", "ALLOWED_HOSTS") if allowed_hosts is None else allowed_hosts
    )
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise IteroUnsafeURL("iTero URL is malformed; refused") from err
    if parts.username or parts.password:
        raise IteroUnsafeURL("iTero URL carries credentials; refused")
    if not host or not host_allowed(host, allowed):
        raise IteroUnsafeURL(
            f"iTero URL host {host or '(none)'!r} is not in ITERO['ALLOWED_HOSTS']; refused"
        )
    if parts.scheme == "https":
        return str(url)
    if parts.scheme == "http" and _is_loopback(host):
        return str(url)  # listed loopback host (sandbox, demo): plain http allowed
    raise IteroUnsafeURL(f"iTero URL for {host!r} must use https; refused")


def fill_placeholders(template: str, **values: str) -> str:
    url = template
    for name, value in values.items():
        url = url.replace("{" + name + "}", quote(str(value), safe=""))
    return url


def _token_set(body: dict[str, Any]) -> TokenSet | None:
    """The token set an OAuth or pair answer holds, or ``None`` without an access token."""
    access, refresh = body.get("access_token"), body.get("refresh_token")
    if not isinstance(access, str) or not access:
        return None
    try:
        expires_in = int(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        expires_in = 3600
    return TokenSet(access, refresh if isinstance(refresh, str) else "", max(1, expires_in))


class IteroClient(BaseClient):
    """One method per call of the iTero lab API.

    ``tokens`` supplies the bearer token of data calls (shared through the token cache);
    every data call may instead be given ``access_token=`` explicitly (used while a token
    is being refreshed, and right after sign-in).  ``endpoints`` are Discovery's URLs.
    """

    service_name = "itero"
    service_label = "iTero lab API"
    honours_idempotency_key = False  # no idempotency scheme is published: GETs only

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        tokens: TokenCache | None = None,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.config: dict[str, Any] = config or get_setting("ITERO")
        self.endpoints: dict[str, str] = dict(endpoints or {})
        super().__init__(
            self.config["BASE_URL"] or "https://itero.invalid",
            retry=retry_from_settings(get_setting("SERVICE")),
            connect_timeout=float(self.config["CONNECT_TIMEOUT"]),
            read_timeout=float(self.config["READ_TIMEOUT"]),
            max_response_bytes=int(get_setting("MAX_RESPONSE_BYTES")),
            tokens=tokens,
        )

    # -- URLs ---------------------------------------------------------------------------
    def _check(self, url: str) -> str:
        return check_url(url, self.config["ALLOWED_HOSTS"])

    def _configured(self, key: str) -> str:
        value = str(self.config.get(key) or "").rstrip("/")
        if not value:
            raise AlignConfigurationError(f"ALIGN_INTEGRATION['ITERO']['{key}'] is not set")
        return value

    def endpoint(self, name: str, **values: str) -> str:
        """The URL of ``name``: Discovery's, else ``PATHS[name]`` on ``BASE_URL``; checked."""
        template = self.endpoints.get(name)
        if not template:
            path = (self.config.get("PATHS") or {}).get(name)
            if not path:
                raise AlignConfigurationError(f"no iTero endpoint for {name!r}: run Discovery")
            template = f"{self._configured('BASE_URL')}/{str(path).lstrip('/')}"
        return self._check(fill_placeholders(template, **values))

    def login_url(self, *, redirect_uri: str, state: str) -> str:
        """Where to send the browser to sign in to iTero (authorization code flow)."""
        query = urlencode(
            {
                "client_id": self.config["CLIENT_ID"],
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "state": state,
            }
        )
        login = self._check(self._configured("LOGIN_URL"))
        return f"{login}{'&' if '?' in login else '?'}{query}"

    # -- OAuth --------------------------------------------------------------------------
    def _oauth(self, call: str, path: str, form: dict[str, str]) -> requests.Response:
        url = self._check(f"{self._configured('OAUTH_BASE_URL')}{path}")
        return self.send(call, "POST", url, data=form)

    def _grant(self, form: dict[str, str]) -> TokenSet:
        form = {
            **form,
            "client_id": self.config["CLIENT_ID"],
            "client_secret": self.config["CLIENT_SECRET"],
        }
        response = self._oauth("itero_token", "/oauth/token", form)
        if response.status_code in (400, 401):
            refused = self.error_for(response, "itero_token")
            error = refused.errors[0] if refused.errors else "invalid_request"
            raise IteroOAuthError(
                f"iTero refused the {form['grant_type']} grant ({response.status_code} {error})",
                error=error[:64],
                status_code=response.status_code,
                request_id=refused.request_id,
            ) from refused
        if response.status_code != 200:
            raise self.error_for(response, "itero_token")
        return self._token_answer(response, "itero_token")

    def _token_answer(self, response: requests.Response, call: str) -> TokenSet:
        token_set = _token_set(self.json_object(response, call))
        if token_set is None:
            raise self.protocol_error(response, call, "has no access_token")
        return token_set

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        return self._grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, token: str) -> None:
        """Log out ``token`` (access or refresh).  Errors are raised; callers may ignore them."""
        response = self._oauth("itero_revoke", "/oauth/revoke", {"token": token})
        if not 200 <= response.status_code < 300:
            raise self.error_for(response, "itero_revoke")
        response.close()

    # -- data calls ---------------------------------------------------------------------
    def _call(
        self, call: str, method: str, url: str, *, access_token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send with the bearer token (the URL checked before any token is looked up)."""
        return self.authorized(call, method, self._check(url), access_token=access_token, **kwargs)

    def discover(self, *, access_token: str | None = None) -> Discovery:
        """Run Discovery; every endpoint it names must pass :func:`check_url`, or nothing is
        taken from it.  The client uses the answer from then on."""
        url = self._check(
            f"{self._configured('BASE_URL')}/"
            f"{str(self.config['PATHS'].get('discovery', '/api/v2/discovery')).lstrip('/')}"
        )
        body = self.json_object(
            self._call("discovery", "GET", url, access_token=access_token), "discovery"
        )
        raw = body.get("endpoints")
        if not isinstance(raw, dict):
            raw = {}
        endpoints: dict[str, str] = {}
        for name in ENDPOINT_NAMES:
            value = raw.get(name)
            if isinstance(value, str) and value:
                self._check(fill_placeholders(value, rxId="x", assetType="ide"))
                endpoints[name] = value
        self.endpoints = endpoints
        return Discovery(region=str(body.get("region") or "")[:32], endpoints=endpoints)

    def list_accounts(self, *, access_token: str | None = None) -> list[dict[str, Any]]:
        response = self._call(
            "accounts", "GET", self.endpoint("accounts"), access_token=access_token
        )
        accounts = self.json_object(response, "accounts").get("accounts") or []
        return [account for account in accounts if isinstance(account, dict)]

    def pair(
        self, account_number: str, callback_url: str, *, access_token: str | None = None
    ) -> TokenSet:
        body: dict[str, str] = {"accountNumber": account_number}
        if callback_url:
            body["callbackUrl"] = callback_url
        response = self._call(
            "pair", "POST", self.endpoint("pair"), access_token=access_token, json=body
        )
        return self._token_answer(response, "pair")

    def unpair(self, account_number: str, *, access_token: str | None = None) -> None:
        self._call(
            "unpair",
            "POST",
            self.endpoint("unpair"),
            access_token=access_token,
            json={"accountNumber": account_number},
        ).close()

    def list_orders(self) -> list[dict[str, Any]]:
        """Get Orders for the lab: orders ready and not downloaded yet."""
        orders = self.json_object(self._call("orders", "GET", self.endpoint("orders")), "orders")
        return [order for order in orders.get("orders") or [] if isinstance(order, dict)]

    def get_order(self, rx_id: str) -> dict[str, Any]:
        response = self._call("order", "GET", self.endpoint("order", rxId=rx_id))
        return self.json_object(response, "order")

    def return_scan(self, rx_id: str, reason: str) -> dict[str, Any]:
        """Send the order back to the doctor for a rescan."""
        response = self._call(
            "return_scan", "POST", self.endpoint("return_scan", rxId=rx_id), json={"reason": reason}
        )
        return self.json_object(response, "return_scan")

    def download(
        self, rx_id: str, out: IO[bytes], *, asset_type: str = "ide", max_bytes: int | None = None
    ) -> int:
        """Stream one asset archive into ``out`` in chunks; return its size.

        Raises :class:`IteroDownloadIncomplete` when fewer bytes than ``Content-Length`` came
        (the caller must then discard ``out``), :class:`IteroDownloadTooLarge` above
        ``max_bytes``, :class:`~align_integration.client.errors.AlignNotFound` while the
        files are not ready.
        """
        if asset_type not in ASSET_TYPES:
            raise ValueError(f"asset_type must be one of {ASSET_TYPES}")
        url = self.endpoint("download", rxId=rx_id, assetType=asset_type)
        response = self._call("download", "GET", url)
        limit = max_bytes if max_bytes is not None else float("inf")
        try:
            try:
                expected: int | None = int(response.headers["Content-Length"])
            except (KeyError, ValueError):
                expected = None
            received = 0
            try:
                for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK):
                    received += len(chunk)
                    if max(received, expected or 0) > limit:
                        raise IteroDownloadTooLarge(
                            f"iTero scan archive is over the {max_bytes} bytes limit",
                            status_code=413,
                        )
                    out.write(chunk)
            except (requests.RequestException, Urllib3HTTPError) as err:
                raise IteroDownloadIncomplete(f"iTero download cut at {received} bytes") from err
            if expected is not None and received != expected:
                raise IteroDownloadIncomplete(f"iTero download gave {received} of {expected} bytes")
            out.flush()
            return received
        finally:
            response.close()
