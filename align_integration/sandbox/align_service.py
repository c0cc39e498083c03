"""The Align integration service, as protocols/align-service.md describes it.

State (tokens, patients, orders, stored idempotent answers) lives in :class:`AlignService`;
each public method answers one call of the protocol. After an order, a ClinCheck revision
or an acceptance the service schedules the signed callbacks Align would send, through the
sandbox's callback scheduler.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from .callbacks import iso_utc
from .wire import ApiError, Reply, Request

if TYPE_CHECKING:
    from .server import Sandbox

EventFactory = Callable[[], tuple[str, dict[str, Any]]]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
UPLOADED_ASSET_COUNT = 2  # the service fetches the case's files itself; the count is nominal


class AlignService:
    """Tokens, patients, orders and idempotent answers of the Align integration service."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.patients: list[dict[str, Any]] = []
            self.orders: list[dict[str, Any]] = []
            self.uploads: list[dict[str, Any]] = []
            self._tokens: dict[str, float] = {}
            self._answers: dict[tuple[str, str], Reply] = {}
            self._serial = 1000

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid."""
        with self.lock:
            self._tokens.clear()

    def _next(self, prefix: str) -> str:
        with self.lock:
            self._serial += 1
            return f"{prefix}{self._serial}"

    # --- authentication and idempotency -------------------------------------------------------

    def token(self, request: Request, params: dict[str, str]) -> Reply:
        form = request.form_fields()
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "grant_type must be client_credentials")
        ok_id = secrets.compare_digest(form.get("client_id", ""), self._sandbox.client_id)
        ok_secret = secrets.compare_digest(
            form.get("client_secret", ""), self._sandbox.client_secret
        )
        if not (ok_id and ok_secret):
            raise ApiError(401, "invalid client")
        access_token = secrets.token_urlsafe(32)
        ttl = self._sandbox.token_ttl
        with self.lock:
            self._tokens[access_token] = time.time() + ttl
        return Reply.of_json(
            200, {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
        )

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            expires_at = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None or expires_at <= time.time():
            raise ApiError(401, "invalid token")

    def _guarded(self, call: str, request: Request, act: Callable[[], Reply]) -> Reply:
        """Authorize, then act once per Idempotency-Key, replaying the first answer on repeats."""
        self._authorize(request)
        key = request.idempotency_key
        if key is None and request.method == "POST":
            raise ApiError(400, "Idempotency-Key header required")
        with self.lock:  # one writer at a time: a concurrent repeat waits, then replays
            if key is None:
                return act()
            stored = self._answers.get((call, key))
            if stored is not None:
                replay = stored.copy()
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                reply = act()
            except ApiError as err:
                reply = err.reply()
            if reply.status < 500:
                self._answers[(call, key)] = reply.copy()
            return reply

    # --- patients -------------------------------------------------------------------------------

    def create_patient(self, request: Request, params: dict[str, str]) -> Reply:
        return self._guarded("create_patient", request, lambda: self._create_patient(request))

    def _create_patient(self, request: Request) -> Reply:
        body = request.json_object()
        errors = _required_text(body, "caseId", "mrn", "firstName", "lastName")
        birth = body.get("dateOfBirth")
        if not (isinstance(birth, str) and _DATE.fullmatch(birth) and _is_date(birth)):
            errors.append("dateOfBirth: required, a date as YYYY-MM-DD")
        if body.get("gender") not in ("M", "F"):
            errors.append('gender: must be "M" or "F"')
        errors += [
            f"{name}: required, a string (may be empty)"
            for name in ("email", "phone")
            if not isinstance(body.get(name), str)
        ]
        if errors:
            raise ApiError(422, *errors)
        patient = {
            name: body[name]
            for name in (
                "caseId",
                "mrn",
                "firstName",
                "lastName",
                "dateOfBirth",
                "gender",
                "email",
                "phone",
            )
        }
        patient["patientId"] = self._next("P-")
        patient["createdAt"] = iso_utc()
        self.patients.append(patient)
        return Reply.of_json(200, {"patientId": patient["patientId"]})

    def find_patients(self, request: Request, params: dict[str, str]) -> Reply:
        def act() -> Reply:
            case_id = _case_query(request)
            return Reply.of_json(
                200,
                {
                    "results": [
                        {"patientId": p["patientId"], "caseId": p["caseId"]}
                        for p in self.patients
                        if p["caseId"] == case_id
                    ]
                },
            )

        return self._guarded("find_patients", request, act)

    def _patient(self, patient_id: str, case_id: str) -> dict[str, Any] | None:
        return next(
            (p for p in self.patients if p["patientId"] == patient_id and p["caseId"] == case_id),
            None,
        )

    # --- orders ---------------------------------------------------------------------------------

    def create_order(self, request: Request, params: dict[str, str]) -> Reply:
        return self._guarded("create_order", request, lambda: self._create_order(request))

    def _create_order(self, request: Request) -> Reply:
        body = request.json_object()
        errors = _required_text(body, "caseId", "patientId", "mrn")
        if body.get("orderType") != "IAS":
            errors.append('orderType: must be "IAS"')
        errors += [
            f"{name}: required, a string"
            for name in ("treatmentOption", "chiefConcern")
            if not isinstance(body.get(name), str)
        ]
        if errors:
            raise ApiError(422, *errors)
        patient = self._patient(body["patientId"], body["caseId"])
        if patient is None:
            raise ApiError(404, "patient not found for this case")
        order = {
            name: body[name]
            for name in (
                "caseId",
                "patientId",
                "mrn",
                "orderType",
                "treatmentOption",
                "chiefConcern",
            )
        }
        order.update(
            orderId=self._next("O-"),
            status="treatment_plan_ready",
            planVersion=1,
            createdAt=iso_utc(),
        )
        self.orders.append(order)
        self._announce_order(order)
        return Reply.of_json(200, {"orderId": order["orderId"]})

    def _announce_order(self, order: dict[str, Any]) -> None:
        case_id, patient_id = order["caseId"], order["patientId"]
        primary, secondary, plan_id = self._next("SO-"), self._next("SO-"), self._next("PLAN-")

        def sales_order(number: str, order_type: str) -> EventFactory:
            return lambda: (
                "sales_order.created",
                {
                    "caseId": case_id,
                    "salesOrderNumber": number,
                    "patientId": patient_id,
                    "orderType": order_type,
                    "createdAt": iso_utc(),
                },
            )

        self._sandbox.schedule_callbacks(
            [
                sales_order(primary, "primary"),
                sales_order(secondary, "secondary"),
                *self._plan_events(case_id, plan_id, 1),
            ]
        )

    def _plan_events(self, case_id: str, plan_id: str, version: int) -> list[EventFactory]:
        return [
            lambda: (
                "treatment_plan.submitted",
                {"caseId": case_id, "planId": plan_id, "version": version, "createdAt": iso_utc()},
            ),
            lambda: (
                "case.status_changed",
                {"caseId": case_id, "status": "treatment_plan_ready", "changedAt": iso_utc()},
            ),
        ]

    def find_orders(self, request: Request, params: dict[str, str]) -> Reply:
        def act() -> Reply:
            case_id = _case_query(request)
            return Reply.of_json(
                200,
                {
                    "results": [
                        {name: o[name] for name in ("orderId", "caseId", "patientId", "orderType")}
                        for o in self.orders
                        if o["caseId"] == case_id
                    ]
                },
            )

        return self._guarded("find_orders", request, act)

    def _latest_order(self, case_id: str) -> dict[str, Any]:
        order = next((o for o in reversed(self.orders) if o["caseId"] == case_id), None)
        if order is None:
            raise ApiError(404, "no order for this case")
        return order

    # --- drift: records made at Align directly (control only) -----------------------------------

    def add_patient(self, case_id: str, patient_id: str | None = None) -> str:
        """A patient for ``case_id`` made at Align directly, not through this API (as Align's
        staff or another tool would): the host never heard of it.  Calling it twice for one
        case gives the case two candidates.  Returns the patient id."""
        with self.lock:
            patient_id = patient_id or self._next("P-")
            if any(p["patientId"] == patient_id for p in self.patients):
                raise ValueError(f"patient {patient_id} exists already")
            self.patients.append(
                {
                    "caseId": case_id,
                    "patientId": patient_id,
                    "createdAt": iso_utc(),
                    "madeBy": "control",
                }
            )
        return patient_id

    def add_order(
        self,
        case_id: str,
        patient_id: str,
        order_id: str | None = None,
        order_type: str = "IAS",
    ) -> str:
        """A primary order made at Align directly (no callbacks follow).  Returns its id."""
        with self.lock:
            order_id = order_id or self._next("O-")
            if any(o["orderId"] == order_id for o in self.orders):
                raise ValueError(f"order {order_id} exists already")
            self.orders.append(
                {
                    "caseId": case_id,
                    "patientId": patient_id,
                    "orderId": order_id,
                    "orderType": order_type,
                    "status": "created",
                    "planVersion": 1,
                    "createdAt": iso_utc(),
                    "madeBy": "control",
                }
            )
        return order_id

    def remove_patient(self, patient_id: str) -> bool:
        """Forget one patient (its orders stay); False when there was none."""
        with self.lock:
            kept = [p for p in self.patients if p["patientId"] != patient_id]
            removed = len(kept) != len(self.patients)
            self.patients[:] = kept
        return removed

    def remove_order(self, order_id: str) -> bool:
        """Forget one order; False when there was none."""
        with self.lock:
            kept = [o for o in self.orders if o["orderId"] != order_id]
            removed = len(kept) != len(self.orders)
            self.orders[:] = kept
        return removed

    # --- assets and ClinCheck -------------------------------------------------------------------

    def upload_assets(self, request: Request, params: dict[str, str]) -> Reply:
        return self._guarded("upload_assets", request, lambda: self._upload_assets(request))

    def _upload_assets(self, request: Request) -> Reply:
        form = request.form_fields()
        errors = _required_text(form, "pId", "mrn", "caseId")
        if errors:
            raise ApiError(422, *errors)
        if self._patient(form["pId"], form["caseId"]) is None:
            raise ApiError(404, "patient not found for this case")
        self.uploads.append({"caseId": form["caseId"], "patientId": form["pId"], "at": iso_utc()})
        return Reply.of_json(200, {"uploaded": UPLOADED_ASSET_COUNT})

    def clincheck_accept(self, request: Request, params: dict[str, str]) -> Reply:
        return self._guarded(
            "clincheck_accept", request, lambda: self._accept(request, params["case_id"])
        )

    def _accept(self, request: Request, case_id: str) -> Reply:
        form = self._clincheck_form(request, case_id, "vault_id", "external_key")
        order = self._latest_order(form["caseId"])
        order.update(
            status="accepted",
            acceptedAt=iso_utc(),
            vaultId=form["vault_id"],
            externalKey=form["external_key"],
        )
        self._sandbox.schedule_callbacks(
            [
                lambda: (
                    "case.status_changed",
                    {"caseId": case_id, "status": "accepted", "changedAt": iso_utc()},
                ),
            ]
        )
        return Reply.of_json(200, {"status": "accepted"})

    def clincheck_revise(self, request: Request, params: dict[str, str]) -> Reply:
        return self._guarded(
            "clincheck_revise", request, lambda: self._revise(request, params["case_id"])
        )

    def _revise(self, request: Request, case_id: str) -> Reply:
        form = self._clincheck_form(request, case_id, "comments")
        order = self._latest_order(form["caseId"])
        order["planVersion"] += 1
        order.update(status="revision_requested", comments=form["comments"])
        self._sandbox.schedule_callbacks(
            self._plan_events(case_id, self._next("PLAN-"), order["planVersion"])
        )
        return Reply.of_json(200, {"status": "revision_requested"})

    def _clincheck_form(self, request: Request, case_id: str, *names: str) -> dict[str, str]:
        form = request.form_fields()
        errors = _required_text(form, "caseId", "mrn", *names)
        if not errors and form["caseId"] != case_id:
            errors.append("caseId: does not match the case in the URL")
        if errors:
            raise ApiError(422, *errors)
        return form


def _required_text(fields: dict[str, Any], *names: str) -> list[str]:
    return [
        f"{name}: required, a non-empty string"
        for name in names
        if not (isinstance(fields.get(name), str) and fields[name].strip())
    ]


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _case_query(request: Request) -> str:
    case_id = request.arg("caseId")
    if not case_id:
        raise ApiError(400, "caseId query parameter required")
    return case_id
