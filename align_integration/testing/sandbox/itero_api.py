"""The iTero lab API over HTTP, as protocols/itero-lab-api.md describes it.

:class:`IteroApi` answers Discovery, accounts, pair/un-pair, Get Orders, order by Rx id,
download and return scan, over the state of an :class:`~.itero.IteroLab`. A token issued by
pairing belongs to that pairing's lab account: Get Orders with it lists that account's
orders only, and another account's order (look-up, download, return scan) is not found
with it; a sign-in token sees every paired account's. Downloads stream the archives of
the lab's :class:`~.archives.ArchiveStore`.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Protocol

from werkzeug.wrappers import Response

from .itero import DOWNLOADED, READY, RETURNED, IteroLab
from .scans import ASSET_TYPES
from .wire import ApiError, ApiRequest, Route, file_reply, json_reply

V1 = "/api/third-party/v1"


class PublicAddress(Protocol):
    """Where the sandbox is reached from the host (the URLs Discovery advertises)."""

    @property
    def base_url(self) -> str: ...


class IteroApi:
    """The handlers of the iTero lab API (see the module docstring)."""

    def __init__(self, lab: IteroLab, address: PublicAddress) -> None:
        self._lab = lab
        self._auth = lab.auth
        self._address = address

    def routes(self) -> list[Route]:
        return [
            Route("discovery", "GET", "/api/v2/discovery", self.discovery),
            Route("accounts", "GET", f"{V1}/accounts", self.list_accounts),
            Route("pair", "POST", f"{V1}/pair", self.pair),
            Route("unpair", "POST", f"{V1}/unpair", self.unpair),
            Route("orders", "GET", f"{V1}/orders/lab", self.list_orders),
            Route("order", "GET", f"{V1}/orders/{{rx_id}}", self.get_order),
            Route(
                "download", "GET", f"{V1}/orders/{{rx_id}}/download/{{asset_type}}", self.download
            ),
            Route("return_scan", "POST", f"{V1}/orders/{{rx_id}}/return", self.return_scan),
        ]

    def discovery(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._auth.authorize(request)
        base = self._address.base_url + V1
        endpoints = {
            "accounts": f"{base}/accounts",
            "pair": f"{base}/pair",
            "unpair": f"{base}/unpair",
            "orders": f"{base}/orders/lab",
            "order": f"{base}/orders/{{rxId}}",
            "download": f"{base}/orders/{{rxId}}/download/{{assetType}}",
            "return_scan": f"{base}/orders/{{rxId}}/return",
        }
        with self._lab.lock:
            endpoints.update(self._lab.discovery_overrides)
        return json_reply(200, {"region": "us", "endpoints": endpoints})

    def list_accounts(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._auth.authorize(request)
        with self._lab.lock:
            return json_reply(200, {"accounts": copy.deepcopy(self._lab.accounts)})

    def _account(self, body: dict[str, Any]) -> str:
        account = body.get("accountNumber")
        if not isinstance(account, str) or not account:
            raise ApiError(422, "accountNumber: required, a non-empty string")
        if not self._lab.has_account(account):
            raise ApiError(404, "account not found")
        return account

    def pair(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._auth.authorize(request)
        body = request.json_object()
        callback_url = body.get("callbackUrl")
        if callback_url is not None and not isinstance(callback_url, str):
            raise ApiError(422, "callbackUrl: must be a string")
        return json_reply(200, self._lab.pair(self._account(body), callback_url))

    def unpair(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._auth.authorize(request)
        self._lab.unpair(self._account(request.json_object()))
        return json_reply(200, {})

    def list_orders(self, request: ApiRequest, params: dict[str, str]) -> Response:
        account = self._lab.account_of(self._auth.authorize(request))
        with self._lab.lock:
            ready = [
                order
                for order in self._lab.orders.values()
                if order["status"] == READY
                and order["accountNumber"] in self._lab.paired
                and account in (None, order["accountNumber"])
            ]
            return json_reply(200, {"orders": copy.deepcopy(ready)})

    def _order(self, rx_id: str, lineage: str) -> dict[str, Any]:
        """The order, if the token's pairing (or sign-in) may see it; else a 404."""
        order = self._lab.orders.get(rx_id)
        account = self._lab.account_of(lineage)
        if order is None or account not in (None, order["accountNumber"]):
            raise ApiError(404, "order not found")
        return order

    def get_order(self, request: ApiRequest, params: dict[str, str]) -> Response:
        lineage = self._auth.authorize(request)
        with self._lab.lock:
            return json_reply(200, copy.deepcopy(self._order(params["rx_id"], lineage)))

    def return_scan(self, request: ApiRequest, params: dict[str, str]) -> Response:
        lineage = self._auth.authorize(request)
        body = request.json_object(optional=True)
        if not isinstance(body.get("reason", ""), str):
            raise ApiError(422, "reason: must be a string")
        with self._lab.lock:
            order = self._order(params["rx_id"], lineage)
            order["status"] = RETURNED
            order["returnReason"] = body.get("reason", "")
        return json_reply(200, {"rxId": params["rx_id"], "status": RETURNED})

    def download(self, request: ApiRequest, params: dict[str, str]) -> Response:
        lineage = self._auth.authorize(request)
        rx_id, asset_type = params["rx_id"], params["asset_type"]
        if asset_type not in ASSET_TYPES:
            raise ApiError(400, f"assetType must be one of {', '.join(ASSET_TYPES)}")
        with self._lab.lock:
            order = self._order(rx_id, lineage)
            files = self._lab.scans[rx_id]
            if files.not_ready_downloads > 0:
                files.not_ready_downloads -= 1
                raise ApiError(404, "File Not Found")
            version = order["version"]
            snapshot = copy.deepcopy(order)
        path = self._lab.archives.get(rx_id, version, asset_type, files, snapshot)
        stream = path.open("rb")
        length = os.fstat(stream.fileno()).st_size
        if asset_type == "ide":
            with self._lab.lock:
                if order["version"] == version:
                    order["status"] = DOWNLOADED
        return file_reply(stream, length, "application/zip", f"{rx_id}-{asset_type}.zip")
