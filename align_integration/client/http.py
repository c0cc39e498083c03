"""One ``requests`` session per client: timeouts, retries, User-Agent and key=value logs.

Logs carry the call name, method, path, status, request id and attempt count: never
headers, tokens, query strings or bodies.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from align_integration import __version__
from align_integration.client.errors import error_from_exception, request_id_of

logger = logging.getLogger("align_integration.client")

USER_AGENT = f"django-align-integration/{__version__} (+requests/{requests.__version__})"


class ServiceSession:
    """A base URL, a pooled ``requests.Session`` with retries, and (connect, read) timeouts."""

    def __init__(
        self,
        base_url: str,
        *,
        retry: Retry,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        service_name: str = "align",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.service_name = service_name
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.session.max_redirects = 0
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        call: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one logical request (urllib3 retries it); raise ours on no answer."""
        started = time.monotonic()
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        try:
            response = self.session.request(method, self.url(path), headers=headers, **kwargs)
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
            raise error_from_exception(exc, call) from exc
        retries = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
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

    def close(self) -> None:
        self.session.close()


def _path_only(path: str) -> str:
    """The path without query string or host: queries may carry identifiers."""
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    return path.split("?", 1)[0]
