"""The Align integration service client (protocols/align-service.md).

One method per call of the protocol.  POSTs take the caller's idempotency key (made once
per logical operation and stored before the first attempt), so in-request retries, a
retry after a 401 and a background retry all reuse it.  Patient data travels only in
request bodies, never in a URL or a log line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from align_integration.client.errors import AlignConfigurationError
from align_integration.client.http import BaseClient
from align_integration.client.retry import AlignRetry, retry_from_settings
from align_integration.client.token import TokenCache
from align_integration.conf import get_setting

#: ``SERVICE`` keys the client cannot work without.
REQUIRED_KEYS = ("BASE_URL", "CLIENT_ID", "CLIENT_SECRET")


class AlignServiceClient(BaseClient):
    """HTTP client for the Align integration service.

    Built without any network call; the bearer token is fetched on first use.  A missing
    ``SERVICE`` key raises :class:`~align_integration.client.errors.AlignConfigurationError`
    (Django's ``ImproperlyConfigured``) when a token is first needed.
    """

    service_name = "align"
    service_label = "Align service"
    honours_idempotency_key = True  # the service answers a repeated key with the first answer

    def __init__(
        self,
        service: dict[str, Any] | None = None,
        token_cache_alias: str = "",
        *,
        retry: AlignRetry | None = None,
    ) -> None:
        """``retry``: the in-request retry to use instead of the settings' (the batch
        commands pass one that leaves 429 and 503 to their own pacing)."""
        self.config: dict[str, Any] = service or get_setting("SERVICE")
        self.paths: dict[str, str] = self.config["PATHS"]
        super().__init__(
            self.config["BASE_URL"] or "http://align-service.invalid",
            retry=retry or retry_from_settings(self.config),
            connect_timeout=float(self.config["CONNECT_TIMEOUT"]),
            read_timeout=float(self.config["READ_TIMEOUT"]),
            max_response_bytes=int(get_setting("MAX_RESPONSE_BYTES")),
            tokens=TokenCache(
                "align",
                self._fetch_token,
                alias=token_cache_alias or get_setting("TOKEN_CACHE"),
                margin=int(get_setting("TOKEN_REFRESH_MARGIN")),
                lock_timeout=float(get_setting("TOKEN_LOCK_TIMEOUT")),
            ),
        )

    # -- token -------------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self.shared_token()

    def _fetch_token(self) -> tuple[str, int]:
        missing = [key for key in REQUIRED_KEYS if not self.config.get(key)]
        if missing:
            raise AlignConfigurationError(
                f"ALIGN_INTEGRATION['SERVICE'] is missing {', '.join(missing)}"
            )
        response = self.send(
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
            raise self.error_for(response, "token")
        body = self.json_object(response, "token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self.protocol_error(response, "token", "has no access_token")
        try:
            expires_in = int(body.get("expires_in") or 3600)
        except (TypeError, ValueError) as err:
            raise self.protocol_error(response, "token", "has a malformed expires_in") from err
        return token, expires_in

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
        """Send with the shared token (a 401 refreshes it once); the answer's JSON object."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.authorized(call, method, path, headers=headers, **kwargs)
        return self.json_object(response, call)

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
