"""The iTero lab API, as protocols/itero-lab-api.md describes it.

:class:`IteroLab` holds the lab accounts, the pairings (account -> notification URL), the
orders (one per scan, keyed by Rx id) and answers Discovery, accounts, pair/un-pair, Get
Orders, order by Rx id, download and return scan. Tests drive it through :meth:`create_scan`
and :meth:`update_scan`, which notify the paired host as iTero does on every file change.
Archives are generated once per (Rx id, version, asset type) into the sandbox's scratch
folder and streamed from disk.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .callbacks import iso_utc
from .itero_auth import IteroAuth
from .scans import ASSET_TYPES, build_asset
from .wire import ApiError, Reply, Request

if TYPE_CHECKING:
    from .server import Sandbox

READY = "Ready For Download"
DOWNLOADED = "Downloaded"
RETURNED = "Returned"
V1 = "/api/third-party/v1"
PREBUILD_FROM = 16 * 1024 * 1024  # bytes; smaller archives are built on first download


def default_accounts() -> list[dict[str, Any]]:
    return [{"accountNumber": "LAB-1001", "name": "Sandbox Lab", "type": "lab"}]


@dataclass
class ScanFiles:
    """How the files of one scan are made, and how many downloads still answer 404."""

    stl_count: int
    size: int | None
    not_ready_downloads: int


class IteroLab:
    """State and handlers of the iTero lab API (see the module docstring)."""

    def __init__(self, sandbox: Sandbox, client_id: str, client_secret: str) -> None:
        self._sandbox = sandbox
        self.auth = IteroAuth(client_id, client_secret)
        self.lock = threading.RLock()
        self._build_locks: dict[tuple[str, int, str], threading.Lock] = {}
        self._archives: dict[tuple[str, int, str], Path] = {}
        self.reset()

    @property
    def token_ttl(self) -> float:
        """Lifetime in seconds of the access tokens issued from now on."""
        return self.auth.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        self.auth.token_ttl = seconds

    def reset(self) -> None:
        with self.lock:
            self.accounts: list[dict[str, Any]] = default_accounts()
            self.paired: dict[str, str | None] = {}
            self.orders: dict[str, dict[str, Any]] = {}
            self.discovery_overrides: dict[str, str] = {}
            self.scans: dict[str, ScanFiles] = {}
            self._pair_lineage: dict[str, str] = {}
            self._serial = 17544400
            for path in self._archives.values():
                path.unlink(missing_ok=True)
            self._archives.clear()
            self._build_locks.clear()
        self.auth.reset()

    def expire_tokens(self) -> None:
        """Every iTero access token issued so far becomes invalid."""
        self.auth.expire_tokens()

    # --- driving the lab from tests -------------------------------------------------------------

    def create_scan(
        self,
        account_number: str | None = None,
        chart_number: str = "MRN-1",
        first_name: str = "Pat",
        last_name: str = "Example",
        stl_count: int = 2,
        size: int | None = None,
        not_ready_downloads: int = 0,
        notify: bool = True,
        *,
        case_type: str = "Orthodontic",
        doctor_name: str = "Doctor, Sandbox",
    ) -> str:
        """A new scan, Ready For Download; returns its Rx id.

        The paired host is notified when ``notify``; the first ``not_ready_downloads``
        downloads answer 404 "File Not Found", as iTero does before the files are converted.
        """
        now = datetime.now(UTC)
        with self.lock:
            if account_number is None:
                if not self.accounts:
                    raise ValueError("no lab account to create the scan for")
                account_number = str(self.accounts[0]["accountNumber"])
            self._serial += 1
            rx_id = str(uuid.uuid4())
            self.orders[rx_id] = {
                "rxId": rx_id,
                "orderId": str(self._serial),
                "accountNumber": account_number,
                "status": READY,
                "caseType": case_type,
                "dueDate": (now + timedelta(days=14)).date().isoformat(),
                "receivedAt": iso_utc(now),
                "doctor": {"name": doctor_name},
                "patient": {
                    "firstName": first_name,
                    "lastName": last_name,
                    "chartNumber": chart_number,
                },
                "version": 1,
            }
            self.scans[rx_id] = ScanFiles(stl_count, size, not_ready_downloads)
        self._prebuild(rx_id)
        if notify:
            self.notify(rx_id)
        return rx_id

    def update_scan(
        self, rx_id: str, notify: bool = True, *, not_ready_downloads: int | None = None
    ) -> None:
        """A change to the scan's files: new version, Ready For Download again, same order id."""
        with self.lock:
            order = self.orders[rx_id]
            order["version"] += 1
            order["status"] = READY
            if not_ready_downloads is not None:
                self.scans[rx_id].not_ready_downloads = not_ready_downloads
            for key in [key for key in self._archives if key[0] == rx_id]:
                # An open download keeps reading its file: unlinking only removes the name.
                self._archives.pop(key).unlink(missing_ok=True)
        self._prebuild(rx_id)
        if notify:
            self.notify(rx_id)

    def notify(self, rx_id: str) -> None:
        """Send the scan notification for ``rx_id`` if its account is paired with a URL."""
        with self.lock:
            account = self.orders[rx_id]["accountNumber"]
            url = self.paired.get(account)
        if not url:
            return
        payload = json.dumps({"rxId": rx_id, "accountNumber": account}).encode()
        headers = {"Content-Type": "application/json"}
        self._sandbox.spawn(lambda: self._sandbox.outbox.post("notify", url, payload, headers))

    # --- handlers -------------------------------------------------------------------------------

    def discovery(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        base = self._sandbox.base_url + V1
        endpoints = {
            "accounts": f"{base}/accounts",
            "pair": f"{base}/pair",
            "unpair": f"{base}/unpair",
            "orders": f"{base}/orders/lab",
            "order": f"{base}/orders/{{rxId}}",
            "download": f"{base}/orders/{{rxId}}/download/{{assetType}}",
            "return_scan": f"{base}/orders/{{rxId}}/return",
        }
        with self.lock:
            endpoints.update(self.discovery_overrides)
        return Reply.of_json(200, {"region": "us", "endpoints": endpoints})

    def list_accounts(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        with self.lock:
            return Reply.of_json(200, {"accounts": copy.deepcopy(self.accounts)})

    def _account(self, body: dict[str, Any]) -> str:
        account = body.get("accountNumber")
        if not isinstance(account, str) or not account:
            raise ApiError(422, "accountNumber: required, a non-empty string")
        if account not in {str(known["accountNumber"]) for known in self.accounts}:
            raise ApiError(404, "account not found")
        return account

    def pair(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        body = request.json_object()
        callback_url = body.get("callbackUrl")
        if callback_url is not None and not isinstance(callback_url, str):
            raise ApiError(422, "callbackUrl: must be a string")
        with self.lock:
            account = self._account(body)
            lineage = self._pair_lineage.get(account)
            token_set = self.auth.current(lineage) if lineage and account in self.paired else None
            if token_set is None:  # pairing again answers with the same token set
                token_set, self._pair_lineage[account] = self.auth.issue()
            self.paired[account] = callback_url or None
        return Reply.of_json(200, token_set)

    def unpair(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        body = request.json_object()
        with self.lock:
            account = self._account(body)
            self.paired.pop(account, None)
            self._pair_lineage.pop(account, None)
        return Reply.of_json(200, {})

    def list_orders(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        with self.lock:
            ready = [
                order
                for order in self.orders.values()
                if order["status"] == READY and order["accountNumber"] in self.paired
            ]
            return Reply.of_json(200, {"orders": copy.deepcopy(ready)})

    def _order(self, rx_id: str) -> dict[str, Any]:
        order = self.orders.get(rx_id)
        if order is None:
            raise ApiError(404, "order not found")
        return order

    def get_order(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        with self.lock:
            return Reply.of_json(200, copy.deepcopy(self._order(params["rx_id"])))

    def return_scan(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        body = request.json_object(optional=True)
        if not isinstance(body.get("reason", ""), str):
            raise ApiError(422, "reason: must be a string")
        with self.lock:
            order = self._order(params["rx_id"])
            order["status"] = RETURNED
            order["returnReason"] = body.get("reason", "")
        return Reply.of_json(200, {"rxId": params["rx_id"], "status": RETURNED})

    def download(self, request: Request, params: dict[str, str]) -> Reply:
        self.auth.authorize(request)
        rx_id, asset_type = params["rx_id"], params["asset_type"]
        if asset_type not in ASSET_TYPES:
            raise ApiError(400, f"assetType must be one of {', '.join(ASSET_TYPES)}")
        with self.lock:
            order = self._order(rx_id)
            files = self.scans[rx_id]
            if files.not_ready_downloads > 0:
                files.not_ready_downloads -= 1
                raise ApiError(404, "File Not Found")
            version = order["version"]
            snapshot = copy.deepcopy(order)
        path = self._archive(rx_id, version, asset_type, files, snapshot)
        stream = path.open("rb")
        length = os.fstat(stream.fileno()).st_size
        if asset_type == "ide":
            with self.lock:
                if order["version"] == version:
                    order["status"] = DOWNLOADED
        return Reply.of_file(stream, length, "application/zip", f"{rx_id}-{asset_type}.zip")

    def _prebuild(self, rx_id: str) -> None:
        """Start building a large iDE zip now, so that the first download need not wait long."""
        with self.lock:
            files = self.scans[rx_id]
            order = copy.deepcopy(self.orders[rx_id])
        if files.size and files.size >= PREBUILD_FROM:
            self._sandbox.spawn(lambda: self._archive(rx_id, order["version"], "ide", files, order))

    def _archive(
        self, rx_id: str, version: int, asset_type: str, files: ScanFiles, order: dict[str, Any]
    ) -> Path:
        """The archive's path, built on first use; concurrent first downloads build it once."""
        key = (rx_id, version, asset_type)
        with self.lock:
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        with build_lock:
            with self.lock:
                built = self._archives.get(key)
            if built is not None and built.exists():
                return built
            safe_rx = re.sub(r"[^A-Za-z0-9_.-]", "_", rx_id)
            target = self._sandbox.scratch_dir() / f"{safe_rx}-v{version}-{asset_type}.zip"
            partial = target.with_suffix(".part")
            build_asset(
                partial,
                asset_type,
                rx_id,
                stl_count=files.stl_count,
                size=files.size,
                version=version,
                order=order,
            )
            os.replace(partial, target)
            with self.lock:
                self._archives[key] = target
            return target
