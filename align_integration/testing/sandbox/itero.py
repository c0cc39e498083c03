"""The iTero lab, as tests drive it: lab accounts, pairings, orders and their revisions.

:class:`IteroLab` holds what iTero knows: the lab accounts (several may be paired at once),
the pairings (account → notification URL, and which token lineage each pairing issued), and
the orders, one per Rx id. Tests act as the clinic and the lab through :meth:`create_scan`,
:meth:`update_scan` (a new revision of the same Rx: new files, same order id),
:meth:`set_status` (the lab-side statuses of seed 002) and :meth:`add_account`; a change of
the files notifies the paired host, as iTero does. The HTTP side is :mod:`.itero_api`.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .archives import ArchiveStore, ScanFiles
from .itero_auth import IteroAuth
from .scans import DEFAULT_XML, THUMBNAIL_COUNT
from .signing import iso_utc

READY = "Ready For Download"
LAB_REVIEW = "Lab Review"
MODELING = "iTero Modeling"
MILLING = "iTero Milling"
READY_TO_SHIP = "Ready To Ship"
DOWNLOADED = "Downloaded"
RETURNED = "Returned"  # sent back to the doctor for a rescan (return scan)
LAB_STATUSES = (READY, LAB_REVIEW, MODELING, MILLING, READY_TO_SHIP, DOWNLOADED, RETURNED)


def default_accounts() -> list[dict[str, Any]]:
    return [{"accountNumber": "LAB-1001", "name": "Sandbox Lab", "type": "lab"}]


def order_assets(case_type: str, screenshots: int) -> list[dict[str, Any]]:
    """What can be downloaded for an order: the iDE zip, the thumbnails (inside the iDE zip
    for orthodontic cases only), and the screen captures when some were taken."""
    orthodontic = case_type.lower().startswith("ortho")
    assets: list[dict[str, Any]] = [
        {"assetType": "ide"},
        {"assetType": "thumbnails", "count": THUMBNAIL_COUNT, "inIde": orthodontic},
    ]
    if screenshots:
        assets.append({"assetType": "screenshots", "count": screenshots})
    return assets


class Notifier(Protocol):
    def post(self, call: str, url: str, payload: bytes, headers: dict[str, str]) -> int: ...


class Spawner(Protocol):
    def spawn(self, work: Callable[[], Any], delay: float = 0.0) -> None: ...


class IteroLab:
    """State of the iTero lab API and the ways tests change it (see the module docstring)."""

    def __init__(
        self, auth: IteroAuth, archives: ArchiveStore, notifier: Notifier, background: Spawner
    ) -> None:
        self.auth = auth
        self.archives = archives
        self._notifier = notifier
        self._background = background
        self.lock = threading.RLock()
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
            self._pair_lineage: dict[str, str] = {}  # account -> lineage of its pairing
            self._lineage_account: dict[str, str] = {}  # lineage -> account it was paired for
            self._serial = 17544400
            self.archives.clear()
        self.auth.reset()

    def expire_tokens(self) -> None:
        """Every iTero access token issued so far becomes invalid."""
        self.auth.expire_tokens()

    # --- accounts and pairings ------------------------------------------------------------------

    def add_account(
        self, account_number: str, name: str | None = None, account_type: str = "lab"
    ) -> dict[str, Any]:
        """One more account the signed-in user may pair with (several may be paired at once)."""
        with self.lock:
            if self.has_account(account_number):
                raise ValueError(f"account {account_number!r} exists already")
            account = {
                "accountNumber": account_number,
                "name": name or f"Sandbox Lab {account_number}",
                "type": account_type,
            }
            self.accounts.append(account)
            return dict(account)

    def has_account(self, account_number: str) -> bool:
        with self.lock:
            return any(str(a["accountNumber"]) == account_number for a in self.accounts)

    def pair(self, account_number: str, callback_url: str | None) -> dict[str, Any]:
        """Pair with the account; pairing again answers the same (current) token set."""
        with self.lock:
            lineage = self._pair_lineage.get(account_number)
            token_set = self.auth.current(lineage) if lineage else None
            if token_set is None:
                token_set, lineage = self.auth.issue()
                self._pair_lineage[account_number] = lineage
                self._lineage_account[lineage] = account_number
            self.paired[account_number] = callback_url or None
            return token_set

    def unpair(self, account_number: str) -> None:
        with self.lock:
            self.paired.pop(account_number, None)
            self._pair_lineage.pop(account_number, None)

    def account_of(self, lineage: str) -> str | None:
        """The account a token lineage was paired for (``None``: a sign-in token)."""
        with self.lock:
            return self._lineage_account.get(lineage)

    # --- orders, driven by tests ----------------------------------------------------------------

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
        xml_version: str = DEFAULT_XML,
        screenshots: int = 0,
        revisions: int = 1,
        status: str = READY,
    ) -> str:
        """A new scan (status ``status``, Ready For Download by default); returns its Rx id.

        ``revisions`` > 1 makes an Rx whose files already changed that many times. The paired
        host is notified when ``notify``; the first ``not_ready_downloads`` downloads answer
        404 "File Not Found", as iTero does before the files are converted.
        """
        _check_status(status)
        if revisions < 1 or screenshots < 0:
            raise ValueError("revisions must be at least 1 and screenshots not negative")
        now = datetime.now(UTC)
        with self.lock:
            if account_number is None:
                if not self.accounts:
                    raise ValueError("no lab account to create the scan for")
                account_number = str(self.accounts[0]["accountNumber"])
            self._serial += 1
            rx_id = str(uuid.uuid4())
            history = [
                {"version": number, "reason": "scan" if number == 1 else "rescan", "at": iso_utc()}
                for number in range(1, revisions + 1)
            ]
            self.orders[rx_id] = {
                "rxId": rx_id,
                "orderId": str(self._serial),
                "accountNumber": account_number,
                "status": status,
                "caseType": case_type,
                "dueDate": (now + timedelta(days=14)).date().isoformat(),
                "receivedAt": iso_utc(now),
                "doctor": {"name": doctor_name},
                "patient": {
                    "firstName": first_name,
                    "lastName": last_name,
                    "chartNumber": chart_number,
                },
                "version": revisions,
                "revisions": history,
                "xmlVersion": xml_version,
                "assets": order_assets(case_type, screenshots),
            }
            self.scans[rx_id] = ScanFiles(stl_count, size, not_ready_downloads, screenshots)
        self._prebuild(rx_id)
        if notify:
            self.notify(rx_id)
        return rx_id

    def update_scan(
        self,
        rx_id: str,
        notify: bool = True,
        *,
        not_ready_downloads: int | None = None,
        reason: str = "rescan",
        stl_count: int | None = None,
        screenshots: int | None = None,
        xml_version: str | None = None,
    ) -> int:
        """A new revision of the Rx (a rescan, back from modeling…): new files and version,
        Ready For Download again, same order id. Returns the new version."""
        with self.lock:
            order, files = self.orders[rx_id], self.scans[rx_id]
            order["version"] += 1
            order["status"] = READY
            order["revisions"].append(
                {"version": order["version"], "reason": reason, "at": iso_utc()}
            )
            if not_ready_downloads is not None:
                files.not_ready_downloads = not_ready_downloads
            if stl_count is not None:
                files.stl_count = stl_count
            if screenshots is not None:
                files.screenshots = screenshots
            if xml_version is not None:
                order["xmlVersion"] = xml_version
            order["assets"] = order_assets(order["caseType"], files.screenshots)
            version = int(order["version"])
            self.archives.forget(rx_id)
        self._prebuild(rx_id)
        if notify:
            self.notify(rx_id)
        return version

    def set_status(self, rx_id: str, status: str) -> None:
        """Move the order to a lab-side status (Lab Review, iTero Modeling…); files unchanged,
        so nobody is notified. Get Orders lists only Ready For Download orders."""
        _check_status(status)
        with self.lock:
            self.orders[rx_id]["status"] = status

    def notify(self, rx_id: str) -> None:
        """Send the scan notification for ``rx_id`` if its account is paired with a URL."""
        with self.lock:
            account = self.orders[rx_id]["accountNumber"]
            url = self.paired.get(account)
        if not url:
            return
        payload = json.dumps({"rxId": rx_id, "accountNumber": account}).encode()
        headers = {"Content-Type": "application/json"}
        self._background.spawn(lambda: self._notifier.post("notify", url, payload, headers))

    def _prebuild(self, rx_id: str) -> None:
        with self.lock:
            files, order = self.scans[rx_id], copy.deepcopy(self.orders[rx_id])
        self.archives.prebuild(rx_id, files, order)


def _check_status(status: str) -> None:
    if status not in LAB_STATUSES:
        raise ValueError(f"status must be one of {', '.join(LAB_STATUSES)}")
