"""The Align integration service, as protocols/align-service.md describes it.

:class:`AlignService` answers each call of the protocol: tokens, patients, orders, asset
upload, ClinCheck accept and revise, each POST and PUT acting once per Idempotency-Key. Its
records live in :class:`~.align_records.AlignRecords`. After an order, a revision or an
acceptance it schedules the signed callbacks Align would send, through a
:class:`CallbackScheduler`; what it needs of the sandbox's configuration is a
:class:`ServiceSettings`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Protocol

from werkzeug.wrappers import Response

from .align_records import AlignRecords
from .callbacks import EventFactory
from .signing import iso_utc
from .wire import ApiError, ApiRequest, Route, json_reply

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
UPLOADED_ASSET_COUNT = 2  # the service fetches the case's files itself; the count is nominal
StoredAnswer = tuple[int, bytes, list[tuple[str, str]]]


class ServiceSettings(Protocol):
    """The service's credentials and options (attributes of the :class:`~.server.Sandbox`).

    ``plan_viewer_url``: a template (``{caseId}``, ``{planId}``, ``{version}``) of the
    ``viewerUrl`` sent with each treatment plan, or ``None`` to send none.
    """

    client_id: str
    client_secret: str
    token_ttl: int
    plan_viewer_url: str | None


class CallbackScheduler(Protocol):
    def schedule(self, events: Sequence[EventFactory]) -> None: ...


class AlignService:
    """Tokens, idempotent answers and the handlers of the Align integration service."""

    def __init__(
        self, settings: ServiceSettings, records: AlignRecords, callbacks: CallbackScheduler
    ) -> None:
        self._settings = settings
        self._callbacks = callbacks
        self.records = records
        self.lock = records.lock  # one lock for records, tokens and stored answers
        self.reset()

    @property
    def patients(self) -> list[dict[str, Any]]:
        """The live list of patients (hold :attr:`lock` to change it)."""
        return self.records.patients

    @property
    def orders(self) -> list[dict[str, Any]]:
        """The live list of orders (hold :attr:`lock` to change it)."""
        return self.records.orders

    def reset(self) -> None:
        with self.lock:
            self.records.reset()
            self._tokens: dict[str, float] = {}
            self._answers: dict[tuple[str, str], StoredAnswer] = {}

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid."""
        with self.lock:
            self._tokens.clear()

    def routes(self) -> list[Route]:
        return [
            Route("token", "POST", "/auth/token", self.token),
            Route("create_patient", "POST", "/patients", self.create_patient),
            Route("find_patients", "GET", "/patients", self.find_patients),
            Route("create_order", "POST", "/orders", self.create_order),
            Route("find_orders", "GET", "/orders", self.find_orders),
            Route("upload_assets", "POST", "/assets/upload", self.upload_assets),
            Route("clincheck_accept", "PUT", "/orders/{case_id}/accept", self.clincheck_accept),
            Route("clincheck_revise", "PUT", "/orders/{case_id}/modify", self.clincheck_revise),
        ]

    # --- authentication and idempotency -------------------------------------------------------

    def token(self, request: ApiRequest, params: dict[str, str]) -> Response:
        form = request.form_fields()
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "grant_type must be client_credentials")
        ok_id = secrets.compare_digest(form.get("client_id", ""), self._settings.client_id)
        ok_secret = secrets.compare_digest(
            form.get("client_secret", ""), self._settings.client_secret
        )
        if not (ok_id and ok_secret):
            raise ApiError(401, "invalid client")
        access_token = secrets.token_urlsafe(32)
        ttl = self._settings.token_ttl
        with self.lock:
            self._tokens[access_token] = time.time() + ttl
        return json_reply(
            200, {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
        )

    def _authorize(self, request: ApiRequest) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            expires_at = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None or expires_at <= time.time():
            raise ApiError(401, "invalid token")

    def _guarded(self, call: str, request: ApiRequest, act: Callable[[], Response]) -> Response:
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
                status, body, headers = stored
                replay = Response(body, status, headers)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                reply = act()
            except ApiError as err:
                reply = err.reply()
            if reply.status_code < 500:
                self._answers[(call, key)] = (
                    reply.status_code,
                    reply.get_data(),
                    list(reply.headers.items()),
                )
            return reply

    # --- patients -------------------------------------------------------------------------------

    def create_patient(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return self._guarded("create_patient", request, lambda: self._create_patient(request))

    def _create_patient(self, request: ApiRequest) -> Response:
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
        patient = self.records.add_patient(body)
        return json_reply(200, {"patientId": patient["patientId"]})

    def find_patients(self, request: ApiRequest, params: dict[str, str]) -> Response:
        def act() -> Response:
            found = self.records.patients_of(_case_query(request))
            results = [{"patientId": p["patientId"], "caseId": p["caseId"]} for p in found]
            return json_reply(200, {"results": results})

        return self._guarded("find_patients", request, act)

    # --- orders ---------------------------------------------------------------------------------

    def create_order(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return self._guarded("create_order", request, lambda: self._create_order(request))

    def _create_order(self, request: ApiRequest) -> Response:
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
        if self.records.patient(body["patientId"], body["caseId"]) is None:
            raise ApiError(404, "patient not found for this case")
        order = self.records.add_order(body)
        self._announce_order(order)
        return json_reply(200, {"orderId": order["orderId"]})

    def _announce_order(self, order: dict[str, Any]) -> None:
        case_id, patient_id = order["caseId"], order["patientId"]
        primary, secondary = self.records.next_id("SO-"), self.records.next_id("SO-")
        plan_id = self.records.next_id("PLAN-")

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

        self._callbacks.schedule(
            [
                sales_order(primary, "primary"),
                sales_order(secondary, "secondary"),
                *self.plan_events(case_id, plan_id, 1),
            ]
        )

    def plan_events(self, case_id: str, plan_id: str, version: int) -> list[EventFactory]:
        """A treatment plan submitted (with ``viewerUrl`` when configured), then the status."""

        def plan() -> tuple[str, dict[str, Any]]:
            data: dict[str, Any] = {
                "caseId": case_id,
                "planId": plan_id,
                "version": version,
                "createdAt": iso_utc(),
            }
            template = self._settings.plan_viewer_url
            if template:
                data["viewerUrl"] = template.format(caseId=case_id, planId=plan_id, version=version)
            return "treatment_plan.submitted", data

        return [
            plan,
            lambda: (
                "case.status_changed",
                {"caseId": case_id, "status": "treatment_plan_ready", "changedAt": iso_utc()},
            ),
        ]

    def find_orders(self, request: ApiRequest, params: dict[str, str]) -> Response:
        def act() -> Response:
            found = self.records.orders_of(_case_query(request))
            names = ("orderId", "caseId", "patientId", "orderType")
            return json_reply(200, {"results": [{n: o[n] for n in names} for o in found]})

        return self._guarded("find_orders", request, act)

    def _latest_order(self, case_id: str) -> dict[str, Any]:
        found = self.records.orders_of(case_id)
        if not found:
            raise ApiError(404, "no order for this case")
        return found[-1]

    # --- assets and ClinCheck -------------------------------------------------------------------

    def upload_assets(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return self._guarded("upload_assets", request, lambda: self._upload_assets(request))

    def _upload_assets(self, request: ApiRequest) -> Response:
        form = request.form_fields()
        errors = _required_text(form, "pId", "mrn", "caseId")
        if errors:
            raise ApiError(422, *errors)
        if self.records.patient(form["pId"], form["caseId"]) is None:
            raise ApiError(404, "patient not found for this case")
        with self.lock:
            self.records.uploads.append(
                {"caseId": form["caseId"], "patientId": form["pId"], "at": iso_utc()}
            )
        return json_reply(200, {"uploaded": UPLOADED_ASSET_COUNT})

    def clincheck_accept(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return self._guarded(
            "clincheck_accept", request, lambda: self._accept(request, params["case_id"])
        )

    def _accept(self, request: ApiRequest, case_id: str) -> Response:
        form = self._clincheck_form(request, case_id, "vault_id", "external_key")
        order = self._latest_order(form["caseId"])
        order.update(
            status="accepted",
            acceptedAt=iso_utc(),
            vaultId=form["vault_id"],
            externalKey=form["external_key"],
        )
        self._callbacks.schedule(
            [
                lambda: (
                    "case.status_changed",
                    {"caseId": case_id, "status": "accepted", "changedAt": iso_utc()},
                ),
            ]
        )
        return json_reply(200, {"status": "accepted"})

    def clincheck_revise(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return self._guarded(
            "clincheck_revise", request, lambda: self._revise(request, params["case_id"])
        )

    def _revise(self, request: ApiRequest, case_id: str) -> Response:
        form = self._clincheck_form(request, case_id, "comments")
        order = self._latest_order(form["caseId"])
        order["planVersion"] += 1
        order.update(status="revision_requested", comments=form["comments"])
        self._callbacks.schedule(
            self.plan_events(case_id, self.records.next_id("PLAN-"), order["planVersion"])
        )
        return json_reply(200, {"status": "revision_requested"})

    def _clincheck_form(self, request: ApiRequest, case_id: str, *names: str) -> dict[str, str]:
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


def _case_query(request: ApiRequest) -> str:
    case_id = request.arg("caseId")
    if not case_id:
        raise ApiError(400, "caseId query parameter required")
    return case_id
