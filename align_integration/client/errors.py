"""The client's error hierarchy, mapped from an HTTP status in one function.

Every error carries the HTTP status (``None`` when no answer came), the service's error
list and its request id, and says whether trying again later can help (``retryable``) and
whether the service may have acted although we got no answer (``ambiguous``).

Two families stand apart:

- :class:`AlignProtocolError`: an answer came (usually 2xx) but it is not what the protocol
  says: not JSON, not a JSON object, a field missing, or larger than ``MAX_RESPONSE_BYTES``.
  Its ``status_code`` is ``None`` (``http_status`` 502): it is no 4xx the caller caused.
- :class:`AlignConfigurationError`: the app is not configured (a settings key is missing).
  It is Django's ``ImproperlyConfigured``, *not* an :class:`AlignError`, so it is never
  recorded as a failed remote operation: it propagates to whoever runs the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from django.core.exceptions import ImproperlyConfigured


class AlignError(Exception):
    """Base of every error the clients raise."""

    status_code: int | None = None
    retryable: bool = False
    ambiguous: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: list[str] | None = None,
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.errors: list[str] = list(errors or [])
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        """The status to answer a browser with: the service's, or 502/504 when there was none."""
        if self.status_code:
            return self.status_code
        return 504 if isinstance(self, AlignTimeout) else 502


class AlignConnectionError(AlignError):
    """No answer: connection refused or reset, or retries exhausted on those."""

    retryable = True
    ambiguous = True


class AlignTimeout(AlignConnectionError):
    """The service did not answer in time; it may have acted."""


class AlignConfigurationError(ImproperlyConfigured):
    """A settings key the client needs is missing or unusable (base URL, credentials...).

    Raised before anything is sent.  Not an :class:`AlignError`: it is no failure of a
    remote call, so workflows let it propagate instead of recording it on the operation.
    """


class AlignProtocolError(AlignError):
    """The service answered, but not as the protocol says (malformed or oversized answer).

    ``retryable``: a later attempt may get a proper answer.  ``ambiguous`` is set per
    answer: true when the request was not a safe method (a POST or PUT may have acted even
    though its answer cannot be read), false for a GET.  ``response_status`` is the HTTP
    status the malformed answer came with.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool,
        response_status: int | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.ambiguous = ambiguous
        self.response_status = response_status


class AlignAPIError(AlignError):
    """The service answered with a non-2xx status."""


class AlignRequestRejected(AlignAPIError):
    """400/409/422 and other 4xx: the request is wrong; retrying cannot help."""


class AlignAuthenticationError(AlignAPIError):
    """401: credentials or token refused, also after one refresh."""

    status_code = 401


class AlignPermissionDenied(AlignAPIError):
    status_code = 403


class AlignNotFound(AlignAPIError):
    status_code = 404


class AlignRateLimited(AlignAPIError):
    status_code = 429
    retryable = True


class AlignServiceUnavailable(AlignAPIError):
    """5xx: the service failed; it is worth trying again later."""

    retryable = True


def _error_list(body: bytes) -> list[str]:
    """The service's ``errors`` (or ``error``) list from an error body, else ``[]``."""
    try:
        parsed: Any = json.loads(body) if body else None
    except (ValueError, UnicodeError):
        return []
    if isinstance(parsed, dict):
        errors = parsed.get("errors") or parsed.get("error") or []
        if isinstance(errors, str):
            return [errors[:500]]
        if isinstance(errors, list):
            return [str(item)[:500] for item in errors][:20]
    return []


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def request_id_of(response: requests.Response) -> str:
    return response.headers.get("X-Request-Id") or response.headers.get("Request-Id") or ""


def error_class_for(status: int) -> type[AlignAPIError]:
    """The one place a non-2xx status becomes an exception class."""
    if status == 401:
        return AlignAuthenticationError
    if status == 403:
        return AlignPermissionDenied
    if status == 404:
        return AlignNotFound
    if status == 429:
        return AlignRateLimited
    if status >= 500:
        return AlignServiceUnavailable
    return AlignRequestRejected


def error_from_response(
    response: requests.Response, call: str, body: bytes = b"", *, service: str = "Align service"
) -> AlignAPIError:
    """The error for a non-2xx ``response``; ``body`` is its (size-capped) body, already read.

    Only the status and headers of ``response`` are looked at: reading its body is the
    caller's job, so that no body is ever read without a size cap.
    """
    status = response.status_code
    return error_class_for(status)(
        f"{service} answered {status} to {call}",
        status_code=status,
        errors=_error_list(body),
        request_id=request_id_of(response),
        retry_after=_retry_after(response.headers),
    )


def error_from_exception(
    exc: requests.RequestException, call: str, *, service: str = "Align service"
) -> AlignError:
    """A requests exception (no answer) as one of ours; the message holds no URL or body."""
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return AlignTimeout(f"{service} did not answer {call} in time")
    return AlignConnectionError(f"Could not reach the {service} for {call}")
