"""Control endpoints under ``/__sandbox__/``: drive and inspect the sandbox over HTTP.

Another process (a browser during a demo, a host project's end-to-end test, a benchmark)
can read the recorded requests and their counts, stage faults, latency and an in-flight cap,
reset, stage drift at Align (patients and orders made or deleted outside the app), drive the
iTero lab (accounts, scans, revisions, statuses), change the callback settings and send a
signed callback. Control requests are neither recorded nor subject to faults.
Bodies are JSON objects with the Python API's argument names (HTML forms for the page).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from werkzeug.wrappers import Response

from .control_args import (
    CONFIG_FIELDS,
    FAULT_FIELDS,
    ORDER_FIELDS,
    PATIENT_FIELDS,
    SCAN_FIELDS,
    UPDATE_FIELDS,
    body_of,
    from_html_form,
    read_arguments,
)
from .control_page import PREFIX, SandboxView, render_page
from .faults import Fault
from .itero import IteroLab
from .recorder import Grouping
from .wire import ApiError, ApiRequest, Route, html_reply, json_reply, redirect_reply


class SandboxControls(SandboxView, Protocol):
    """What the control endpoints use of the :class:`~.server.Sandbox`."""

    callback_url: str | None
    auto_callbacks: bool
    callback_delay: float
    plan_viewer_url: str | None

    @property
    def itero(self) -> IteroLab: ...

    def inject_fault(
        self,
        call: str,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        drop: str | None = None,
        times: int | None = 1,
        body: Any = None,
        *,
        rate: float = 1.0,
        seed: int | None = None,
    ) -> Fault: ...

    def clear_faults(self) -> None: ...

    def set_latency(self, call: str, seconds: float | None) -> None: ...

    def limit_in_flight(
        self,
        max_in_flight: int | None,
        *,
        retry_after: float = 1,
        calls: Iterable[str] | None = None,
    ) -> None: ...

    def pacing_state(self) -> dict[str, Any]: ...

    def count_summary(self, call: str) -> dict[str, Any]: ...

    def counts(
        self, call: str, by: Grouping = "case", *, acted: bool = False
    ) -> dict[str, int]: ...

    def reset(self) -> None: ...

    def expire_tokens(self) -> None: ...

    def seed_patient(self, case_id: str, **fields: Any) -> str: ...

    def seed_order(self, case_id: str, **fields: Any) -> str: ...

    def delete_patient(self, patient_id: str) -> None: ...

    def delete_order(self, order_id: str) -> None: ...

    def send_callback(
        self,
        event_type: str,
        data: dict[str, Any],
        url: str | None = None,
        secret: str | None = None,
        webhook_id: str | None = None,
        timestamp: datetime | float | None = None,
    ) -> int: ...


class SandboxControl:
    """The handlers of the control endpoints."""

    def __init__(self, sandbox: SandboxControls) -> None:
        self._sandbox = sandbox

    def routes(self) -> list[Route]:
        get, post, delete = "GET", "POST", "DELETE"
        table = [
            (get, "", self.page),
            (get, "/", self.page),
            (get, "/state", self.state),
            (get, "/requests", self.recorded_requests),
            (get, "/counts", self.counts),
            (get, "/faults", self.list_faults),
            (post, "/faults", self.add_fault),
            (delete, "/faults", self.clear_faults),
            (post, "/latency", self.set_latency),
            (post, "/in-flight", self.limit_in_flight),
            (post, "/config", self.configure),
            (post, "/reset", self.reset),
            (post, "/expire-tokens", self.expire_tokens),
            (post, "/align/patients", self.seed_patient),
            (delete, "/align/patients/{patient_id}", self.delete_patient),
            (post, "/align/orders", self.seed_order),
            (delete, "/align/orders/{order_id}", self.delete_order),
            (post, "/itero/accounts", self.add_account),
            (post, "/itero/scans", self.create_scan),
            (post, "/itero/scans/{rx_id}/update", self.update_scan),
            (post, "/itero/scans/{rx_id}/status", self.set_scan_status),
            (post, "/callbacks", self.send_callback),
        ]
        return [Route("control", method, PREFIX + path, handler) for method, path, handler in table]

    # --- reading ------------------------------------------------------------------------------

    def page(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return html_reply(200, render_page(self._sandbox))

    def state(self, request: ApiRequest, params: dict[str, str]) -> Response:
        sandbox, lab = self._sandbox, self._sandbox.itero
        with lab.lock:
            itero = {
                "accounts": lab.accounts,
                "paired": lab.paired,
                "orders": list(lab.orders.values()),
            }
            return json_reply(
                200,
                {
                    "align": {"patients": sandbox.patients, "orders": sandbox.orders},
                    "itero": itero,
                    "faults": [fault.as_dict() for fault in sandbox.faults],
                    "pacing": sandbox.pacing_state(),
                },
            )

    def recorded_requests(self, request: ApiRequest, params: dict[str, str]) -> Response:
        call = request.arg("call")
        recorded = [r.as_dict() for r in self._sandbox.requests if call is None or r.call == call]
        return json_reply(200, recorded)

    def counts(self, request: ApiRequest, params: dict[str, str]) -> Response:
        call = request.arg("call")
        if not call:
            raise ApiError(400, "call query parameter required")
        return json_reply(200, self._sandbox.count_summary(call))

    # --- faults and pacing --------------------------------------------------------------------

    def list_faults(self, request: ApiRequest, params: dict[str, str]) -> Response:
        return json_reply(200, [fault.as_dict() for fault in self._sandbox.faults])

    def add_fault(self, request: ApiRequest, params: dict[str, str]) -> Response:
        body = request.json_object()
        arguments = read_arguments(body, FAULT_FIELDS, required=["call"])
        if "times" in body and body["times"] is None:
            arguments["times"] = None  # forever
        try:
            fault = self._sandbox.inject_fault(**arguments)
        except (TypeError, ValueError) as err:
            raise ApiError(400, str(err)) from err
        return json_reply(200, {"fault": fault.as_dict()})

    def clear_faults(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._sandbox.clear_faults()
        return json_reply(200, {})

    def set_latency(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(
            request.json_object(), {"call": str, "seconds": float}, required=["call"]
        )
        try:
            self._sandbox.set_latency(arguments["call"], arguments.get("seconds"))
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        return json_reply(200, self._sandbox.pacing_state())

    def limit_in_flight(self, request: ApiRequest, params: dict[str, str]) -> Response:
        body = request.json_object()
        arguments = read_arguments(
            body, {"max_in_flight": int, "retry_after": float, "calls": object}
        )
        calls = arguments.get("calls")
        if calls is not None and not (
            isinstance(calls, list) and all(isinstance(c, str) for c in calls)
        ):
            raise ApiError(400, "calls must be a list of call names")
        try:
            self._sandbox.limit_in_flight(
                arguments.get("max_in_flight"),
                retry_after=arguments.get("retry_after", 1),
                calls=calls,
            )
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        return json_reply(200, self._sandbox.pacing_state())

    # --- configuration and life cycle ---------------------------------------------------------

    def configure(self, request: ApiRequest, params: dict[str, str]) -> Response:
        body = request.json_object()
        arguments = read_arguments(body, CONFIG_FIELDS)
        for name in ("callback_url", "plan_viewer_url"):
            if name in body and body[name] in (None, ""):
                arguments[name] = None  # switched off
        for name, value in arguments.items():
            setattr(self._sandbox, name, value)
        return json_reply(200, {name: getattr(self._sandbox, name) for name in CONFIG_FIELDS})

    def reset(self, request: ApiRequest, params: dict[str, str]) -> Response:
        self._sandbox.reset()
        return json_reply(200, {})

    def expire_tokens(self, request: ApiRequest, params: dict[str, str]) -> Response:
        vendor = request.json_object(optional=True).get("vendor", "align")
        if vendor not in ("align", "itero"):
            raise ApiError(400, 'vendor must be "align" or "itero"')
        if vendor == "align":
            self._sandbox.expire_tokens()
        else:
            self._sandbox.itero.expire_tokens()
        return json_reply(200, {"expired": vendor})

    # --- drift at Align -----------------------------------------------------------------------

    def seed_patient(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(request.json_object(), PATIENT_FIELDS, required=["case_id"])
        try:
            patient_id = self._sandbox.seed_patient(arguments.pop("case_id"), **arguments)
        except ValueError as err:
            raise ApiError(409, str(err)) from err
        return json_reply(200, {"patientId": patient_id})

    def seed_order(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(request.json_object(), ORDER_FIELDS, required=["case_id"])
        try:
            order_id = self._sandbox.seed_order(arguments.pop("case_id"), **arguments)
        except ValueError as err:
            raise ApiError(409, str(err)) from err
        return json_reply(200, {"orderId": order_id})

    def delete_patient(self, request: ApiRequest, params: dict[str, str]) -> Response:
        try:
            self._sandbox.delete_patient(params["patient_id"])
        except KeyError as err:
            raise ApiError(404, "patient not found") from err
        return json_reply(200, {})

    def delete_order(self, request: ApiRequest, params: dict[str, str]) -> Response:
        try:
            self._sandbox.delete_order(params["order_id"])
        except KeyError as err:
            raise ApiError(404, "order not found") from err
        return json_reply(200, {})

    # --- the iTero lab ------------------------------------------------------------------------

    def add_account(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(
            request.json_object(),
            {"account_number": str, "name": str, "account_type": str},
            required=["account_number"],
        )
        try:
            account = self._sandbox.itero.add_account(**arguments)
        except ValueError as err:
            raise ApiError(409, str(err)) from err
        return json_reply(200, account)

    def create_scan(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(body_of(request), SCAN_FIELDS)
        try:
            rx_id = self._sandbox.itero.create_scan(**arguments)
        except (TypeError, ValueError) as err:
            raise ApiError(400, str(err)) from err
        if from_html_form(request):
            return redirect_reply(PREFIX + "/", 303)
        return json_reply(200, {"rxId": rx_id})

    def update_scan(self, request: ApiRequest, params: dict[str, str]) -> Response:
        arguments = read_arguments(body_of(request), UPDATE_FIELDS)
        try:
            version = self._sandbox.itero.update_scan(params["rx_id"], **arguments)
        except KeyError as err:
            raise ApiError(404, "order not found") from err
        if from_html_form(request):
            return redirect_reply(PREFIX + "/", 303)
        return json_reply(200, {"rxId": params["rx_id"], "version": version})

    def set_scan_status(self, request: ApiRequest, params: dict[str, str]) -> Response:
        status = read_arguments(body_of(request), {"status": str}, required=["status"])["status"]
        try:
            self._sandbox.itero.set_status(params["rx_id"], status)
        except KeyError as err:
            raise ApiError(404, "order not found") from err
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        if from_html_form(request):
            return redirect_reply(PREFIX + "/", 303)
        return json_reply(200, {"rxId": params["rx_id"], "status": status})

    def send_callback(self, request: ApiRequest, params: dict[str, str]) -> Response:
        body = request.json_object()
        event_type, data = body.get("type"), body.get("data")
        if not isinstance(event_type, str) or not isinstance(data, dict):
            raise ApiError(400, 'expected {"type": str, "data": object}')
        try:
            status = self._sandbox.send_callback(
                event_type, data, url=body.get("url"), webhook_id=body.get("webhookId")
            )
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        return json_reply(200, {"status": status})
