"""The client's error hierarchy, mapped from an HTTP status in one function.

Every error carries the HTTP status (``None`` when no answer came), the service's error
list and its request id, and says whether trying again later can help (``retryable``) and
whether the service may have acted although we got no answer (``ambiguous``).
"""

from __future__ import annotations

from typing import Any

import requests


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


class AlignConfigurationError(AlignError):
    """The client is not configured (missing base URL or credentials)."""


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


def _error_list(body: Any) -> list[str]:
    if isinstance(body, dict):
        errors = body.get("errors") or body.get("error") or []
        if isinstance(errors, str):
            return [errors]
        if isinstance(errors, list):
            return [str(item) for item in errors][:20]
    return []


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def request_id_of(response: requests.Response) -> str:
    return response.headers.get("X-Request-Id") or response.headers.get("Request-Id") or ""


def error_from_response(response: requests.Response, call: str) -> AlignAPIError:
    """The one place a status becomes an exception class."""
    status = response.status_code
    try:
        errors = _error_list(response.json())
    except ValueError:
        errors = []
    cls: type[AlignAPIError]
    if status == 401:
        cls = AlignAuthenticationError
    elif status == 403:
        cls = AlignPermissionDenied
    elif status == 404:
        cls = AlignNotFound
    elif status == 429:
        cls = AlignRateLimited
    elif status >= 500:
        cls = AlignServiceUnavailable
    else:
        cls = AlignRequestRejected
    return cls(
        f"Align service answered {status} to {call}",
        status_code=status,
        errors=errors,
        request_id=request_id_of(response),
        retry_after=_retry_after(response),
    )


def error_from_exception(exc: requests.RequestException, call: str) -> AlignError:
    """A requests exception (no answer) as one of ours; the message holds no URL or body."""
    if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():
        return AlignTimeout(f"Align service did not answer {call} in time")
    return AlignConnectionError(f"Could not reach the Align service for {call}")
