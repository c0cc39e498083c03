"""The HTTP base both clients share: session, per-call retries, the 401 loop, bounded reads.

:class:`BaseClient` holds what the Align service client and the iTero client have in
common, so each of them is one method per call of its protocol:

- :meth:`BaseClient.create_session` builds the ``requests.Session`` (User-Agent, no
  redirects, a :class:`RetryingAdapter` mounted).  A host may override it in a subclass to
  add a proxy, a CA bundle or a client certificate.
- :class:`RetryingAdapter` applies the retry rule per call (``client.retry``): a request
  that may not be sent twice goes through a second, single-shot urllib3 pool.
- :meth:`BaseClient.authorized` sends with the bearer token; a 401 invalidates that token,
  fetches a fresh one and sends once more, once.
- Every answer is streamed and its body read with a cap (``MAX_RESPONSE_BYTES``): a larger
  2xx answer, or one that is not a JSON object, is an
  :class:`~align_integration.client.errors.AlignProtocolError`; of an error answer only the
  first ``MAX_RESPONSE_BYTES`` are read (its status decides the error class).

Logs carry the service, call name, method, path, status, request id and attempt count:
never headers, tokens, query strings or bodies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter

from align_integration import __version__, telemetry
from align_integration.client.errors import (
    AlignAPIError,
    AlignAuthenticationError,
    AlignConfigurationError,
    AlignProtocolError,
    error_from_exception,
    error_from_response,
    request_id_of,
)
from align_integration.client.retry import SAFE_METHODS, AlignRetry, may_resend
from align_integration.client.token import TokenCache
from align_integration.outbound import guard_request

logger = logging.getLogger("align_integration.client")

USER_AGENT = f"django-align-integration/{__version__} (+requests/{requests.__version__})"
READ_CHUNK = 64 * 1024
POOL_SIZE = 32


class RetryingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose urllib3 retries follow :func:`~.retry.may_resend` per request.

    Requests that may be re-sent use ``retry``; the others go through a second pool whose
    retry only reconnects (nothing had been sent), never re-sends.
    """

    def __init__(
        self,
        retry: AlignRetry,
        *,
        honours_idempotency_key: bool = True,
        pool_maxsize: int = POOL_SIZE,
    ) -> None:
        super().__init__(max_retries=retry.new(resend=True), pool_maxsize=pool_maxsize)
        self.honours_idempotency_key = honours_idempotency_key
        self.single_shot = HTTPAdapter(
            max_retries=retry.new(resend=False), pool_maxsize=pool_maxsize
        )

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        method = request.method or "GET"
        if may_resend(
            method, request.headers, honours_idempotency_key=self.honours_idempotency_key
        ):
            return super().send(request, *args, **kwargs)
        return self.single_shot.send(request, *args, **kwargs)

    def close(self) -> None:
        super().close()
        self.single_shot.close()


class BaseClient:
    """One vendor's HTTP API: a lazily built session, timeouts, retries and token handling.

    Subclasses set ``service_name`` (logs), ``service_label`` (messages) and
    ``honours_idempotency_key`` (whether a POST carrying an ``Idempotency-Key`` may be
    retried in-request), and pass a :class:`TokenCache` when calls use a shared token.
    """

    service_name: ClassVar[str] = "align"
    service_label: ClassVar[str] = "Align service"
    honours_idempotency_key: ClassVar[bool] = True

    def __init__(
        self,
        base_url: str,
        *,
        retry: AlignRetry,
        connect_timeout: float,
        read_timeout: float,
        max_response_bytes: int,
        tokens: TokenCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.max_response_bytes = int(max_response_bytes)
        self.tokens = tokens
        self._session: requests.Session | None = None

    # -- the session ------------------------------------------------------------------
    def create_session(self) -> requests.Session:
        """Build the ``requests.Session`` this client sends with (called once, on first use).

        Override to configure it further: call ``super().create_session()`` and change the
        session it returns (``proxies``, ``verify``, ``cert``, hooks...).  Keep the mounted
        :class:`RetryingAdapter` (it carries the retry policy), or mount one of your own
        built from ``self.retry``; and keep ``max_redirects = 0``: a redirect is never
        followed, so no token is sent to a host it was not meant for.
        """
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        session.max_redirects = 0
        adapter = RetryingAdapter(self.retry, honours_idempotency_key=self.honours_idempotency_key)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self.create_session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- one request ------------------------------------------------------------------
    def send(
        self,
        call: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one logical request (urllib3 retries it per the rule); the answer is
        streamed: read it with :meth:`read_body` / :meth:`json_object`, or close it."""
        # The last line of the kill switch: whatever path got here, nothing leaves while
        # align-outbound-paused is on (the workflows check first, to leave work due).
        guard_request()
        started = time.monotonic()
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        with telemetry.vendor_call(self.service_name, call, method) as traced:
            try:
                response = self.session.request(
                    method, self.url(path), headers=dict(headers or {}), **kwargs
                )
            except requests.RequestException as exc:
                logger.warning(
                    "service=%s call=%s method=%s path=%s outcome=no_answer error=%s elapsed_ms=%d",
                    self.service_name,
                    call,
                    method,
                    _path_only(path),
                    type(exc).__name__,
                    (time.monotonic() - started) * 1000,
                )
                traced.finish(error=type(exc).__name__)
                raise error_from_exception(exc, call, service=self.service_label) from exc
            retries = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
            traced.finish(
                status=response.status_code,
                request_id=request_id_of(response) or "",
                attempt=len(retries) + 1,
            )
        logger.info(
            "service=%s call=%s method=%s path=%s status=%s request_id=%s attempts=%d "
            "elapsed_ms=%d",
            self.service_name,
            call,
            method,
            _path_only(path),
            response.status_code,
            request_id_of(response) or "-",
            len(retries) + 1,
            (time.monotonic() - started) * 1000,
        )
        return response

    def authorized(
        self,
        call: str,
        method: str,
        path: str,
        *,
        access_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with a bearer token and return the (streamed) 2xx answer; raise ours else.

        With the shared token (no ``access_token`` given), a 401 invalidates the token it
        was sent with, a fresh one is fetched and the request is sent once more, once.  An
        explicit ``access_token`` is sent once.  The same ``headers`` (hence the same
        ``Idempotency-Key``) go with both sends.
        """
        for attempt in (1, 2):
            token = access_token or self.shared_token()
            response = self.send(
                call,
                method,
                path,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if 200 <= response.status_code < 300:
                return response
            error = self.error_for(response, call)  # a 3xx lands here too: not followed
            if response.status_code != 401:
                raise error
            if access_token or self.tokens is None:
                raise AlignAuthenticationError(
                    f"{self.service_label} refused the token for {call}",
                    status_code=401,
                    errors=error.errors,
                    request_id=error.request_id,
                ) from error
            self.tokens.invalidate(token)
            if attempt == 1:
                logger.info(
                    "service=%s call=%s outcome=token_refused action=refresh_and_resend",
                    self.service_name,
                    call,
                )
                continue
            raise AlignAuthenticationError(
                f"{self.service_label} refused a fresh token for {call}",
                status_code=401,
                errors=error.errors,
                request_id=error.request_id,
            ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def shared_token(self) -> str:
        """The bearer token from the token cache (fetched once for every process)."""
        if self.tokens is None:
            raise AlignConfigurationError(
                f"{self.service_label} client has no token source for authorized calls"
            )
        return self.tokens.get()

    # -- reading answers ----------------------------------------------------------------
    def read_body(self, response: requests.Response, call: str) -> bytes:
        """The whole body, streamed, at most ``max_response_bytes``; always closes.

        Raises :class:`AlignProtocolError` when the body is larger (a declared
        ``Content-Length`` over the cap is refused before reading anything).
        """
        limit = self.max_response_bytes
        try:
            declared = _content_length(response)
            if declared is not None and declared > limit:
                raise self.protocol_error(response, call, f"is {declared} bytes")
            body = bytearray()
            try:
                for chunk in response.iter_content(chunk_size=max(1, min(READ_CHUNK, limit + 1))):
                    body += chunk
                    if len(body) > limit:
                        raise self.protocol_error(response, call, f"is over {limit} bytes")
            except requests.exceptions.ContentDecodingError as exc:
                raise self.protocol_error(response, call, "cannot be decoded") from exc
            except requests.RequestException as exc:
                raise error_from_exception(exc, call, service=self.service_label) from exc
            return bytes(body)
        finally:
            response.close()

    def json_object(self, response: requests.Response, call: str) -> dict[str, Any]:
        """The answer as a JSON object; an empty body is ``{}``.  Anything else (not JSON,
        not an object, over the size cap) is an :class:`AlignProtocolError`."""
        body = self.read_body(response, call)
        if not body.strip():
            return {}
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeError) as err:
            raise self.protocol_error(response, call, "is not JSON") from err
        if not isinstance(parsed, dict):
            raise self.protocol_error(response, call, "is not a JSON object")
        return parsed

    def error_for(self, response: requests.Response, call: str) -> AlignAPIError:
        """The error for a non-2xx answer; only the first ``max_response_bytes`` of its body
        are read (for the service's ``errors`` list), the rest is discarded unread."""
        body = b""
        try:
            if (_content_length(response) or 0) <= self.max_response_bytes:
                body = self._read_at_most(response, self.max_response_bytes)
        finally:
            response.close()
        return error_from_response(response, call, body, service=self.service_label)

    def protocol_error(
        self, response: requests.Response, call: str, problem: str
    ) -> AlignProtocolError:
        """An answer to ``call`` that breaks the protocol (``problem`` says how; no body)."""
        method = (response.request.method if response.request else None) or "GET"
        logger.warning(
            "service=%s call=%s status=%s request_id=%s outcome=protocol_error",
            self.service_name,
            call,
            response.status_code,
            request_id_of(response) or "-",
        )
        return AlignProtocolError(
            f"{self.service_label} answer to {call} {problem}",
            ambiguous=method.upper() not in SAFE_METHODS,
            response_status=response.status_code,
            request_id=request_id_of(response),
        )

    @staticmethod
    def _read_at_most(response: requests.Response, limit: int) -> bytes:
        body = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=max(1, min(READ_CHUNK, limit))):
                body += chunk
                if len(body) >= limit:
                    break
        except requests.RequestException:
            pass  # an error answer cut short: its status still says what happened
        return bytes(body[:limit])


def _content_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _path_only(path: str) -> str:
    """The path without query string or host: queries may carry identifiers."""
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    return path.split("?", 1)[0]
