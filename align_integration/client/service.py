"""The Align integration service client (protocols/align-service.md).

One method per call of the protocol.  POSTs take the caller's idempotency key (made once
per logical operation and stored before the first attempt), so in-request retries, a
retry after a 401 and a background retry all reuse it.  Patient data travels only in
request bodies, never in a URL or a log line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from urllib3.util.retry import Retry

from align_integration.client.errors import (
    AlignAuthenticationError,
    AlignConfigurationError,
    AlignRequestRejected,
    error_from_response,
)
from align_integration.client.http import ServiceSession
from align_integration.client.retry import retry_from_settings
from align_integration.client.token import TokenCache
from align_integration.conf import get_setting


class AlignServiceClient:
    """HTTP client for the Align integration service."""

    def __init__(
        self,
        service: dict[str, Any] | None = None,
        token_cache_alias: str = "",
        *,
        retry: Retry | None = None,
    ) -> None:
        self.config = service or get_setting("SERVICE")
        self.paths: dict[str, str] = self.config["PATHS"]
        self.http = ServiceSession(
            self.config["BASE_URL"] or "http://align-service.invalid",
            retry=retry or retry_from_settings(self.config),
            connect_timeout=float(self.config["CONNECT_TIMEOUT"]),
            read_timeout=float(self.config["READ_TIMEOUT"]),
            service_name="align",
        )
        self.tokens = TokenCache(
            "align",
            self._fetch_token,
            alias=token_cache_alias or get_setting("TOKEN_CACHE"),
            margin=int(get_setting("TOKEN_REFRESH_MARGIN")),
            lock_timeout=float(get_setting("TOKEN_LOCK_TIMEOUT")),
        )

    # -- token -------------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self.tokens.get()

    def _fetch_token(self) -> tuple[str, int]:
        if not (self.config["BASE_URL"] and self.config["CLIENT_ID"]):
            raise AlignConfigurationError(
                "ALIGN_INTEGRATION['SERVICE'] needs BASE_URL, CLIENT_ID and CLIENT_SECRET"
            )
        response = self.http.request(
            "token",
            "POST",
            self.paths["token"],
            data={
                "grant_type": "client_credentials",
                "client_id": self.config["CLIENT_ID"],
                "client_secret": self.config["CLIENT_SECRET"],
            },
        )
        if response.status_code != 200:
            raise error_from_response(response, "token")
        body = _json(response, "token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AlignRequestRejected("token answer had no access_token", status_code=502)
        return token, int(body.get("expires_in") or 3600)

    # -- plumbing ----------------------------------------------------------------------
    def _call(
        self,
        call: str,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send with the shared token; on 401 refresh once and send once more."""
        for attempt in (1, 2):
            token = self.token
            headers = {"Authorization": f"Bearer {token}"}
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            response = self.http.request(call, method, path, headers=headers, **kwargs)
            if response.status_code == 401:
                self.tokens.invalidate(token)
                if attempt == 1:
                    continue
                error = error_from_response(response, call)
                raise AlignAuthenticationError(
                    f"Align service refused a fresh token for {call}",
                    status_code=401,
                    errors=error.errors,
                    request_id=error.request_id,
                ) from error
            if not 200 <= response.status_code < 300:
                raise error_from_response(response, call)
            return _json(response, call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _path(self, call: str, **values: str) -> str:
        return self.paths[call].format(**{k: quote(v, safe="") for k, v in values.items()})

    # -- the protocol ------------------------------------------------------------------
    def create_patient(self, patient: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            "create_patient",
            "POST",
            self._path("create_patient"),
            json=patient,
            idempotency_key=idempotency_key,
        )

    def find_patients(self, case_id: str) -> list[dict[str, Any]]:
        body = self._call(
            "find_patients", "GET", self._path("find_patients"), params={"caseId": case_id}
        )
        return [r for r in body.get("results") or [] if isinstance(r, dict)]

    def create_order(self, order: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            "create_order",
            "POST",
            self._path("create_order"),
            json=order,
            idempotency_key=idempotency_key,
        )

    def find_orders(self, case_id: str) -> list[dict[str, Any]]:
        body = self._call(
            "find_orders", "GET", self._path("find_orders"), params={"caseId": case_id}
        )
        return [r for r in body.get("results") or [] if isinstance(r, dict)]

    def upload_assets(
        self, *, patient_id: str, mrn: str, case_id: str, idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "upload_assets",
            "POST",
            self._path("upload_assets"),
            data={"pId": patient_id, "mrn": mrn, "caseId": case_id},
            idempotency_key=idempotency_key,
        )

    def clincheck_accept(
        self, *, case_id: str, mrn: str, vault_id: str, external_key: str, idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "clincheck_accept",
            "PUT",
            self._path("clincheck_accept", caseId=case_id),
            data={
                "caseId": case_id,
                "mrn": mrn,
                "vault_id": vault_id,
                "external_key": external_key,
            },
            idempotency_key=idempotency_key,
        )

    def clincheck_revise(
        self, *, case_id: str, mrn: str, comments: str, idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "clincheck_revise",
            "PUT",
            self._path("clincheck_revise", caseId=case_id),
            data={"caseId": case_id, "mrn": mrn, "comments": comments},
            idempotency_key=idempotency_key,
        )

    def close(self) -> None:
        self.http.close()


def _json(response: requests.Response, call: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
