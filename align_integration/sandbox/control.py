"""Control endpoints under ``/__sandbox__/``: drive and inspect the sandbox over HTTP.

Another process (a browser during a demo, a host project's end-to-end test) can read the
recorded requests, stage faults, reset, create and update iTero scans, and send a signed
callback. Control requests are neither recorded nor subject to faults.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from .wire import ApiError, Reply, Request

if TYPE_CHECKING:
    from .server import Sandbox

Handler = Callable[[Request, dict[str, str]], Reply]
PREFIX = "/__sandbox__"
_SCAN_INT_FIELDS = ("stl_count", "size", "not_ready_downloads")
_SCAN_FIELDS = (
    "account_number",
    "chart_number",
    "first_name",
    "last_name",
    "notify",
    "case_type",
    "doctor_name",
    *_SCAN_INT_FIELDS,
)
_FAULT_FIELDS = ("call", "status", "retry_after", "delay", "drop", "times", "body", "probability")


def control_routes(sandbox: Sandbox) -> list[tuple[str, str, Handler]]:
    """(method, path pattern, handler) of every control endpoint."""
    control = SandboxControl(sandbox)
    return [
        ("GET", PREFIX, control.page),
        ("GET", PREFIX + "/", control.page),
        ("GET", PREFIX + "/state", control.state),
        ("GET", PREFIX + "/requests", control.recorded_requests),
        ("GET", PREFIX + "/faults", control.list_faults),
        ("POST", PREFIX + "/faults", control.add_fault),
        ("DELETE", PREFIX + "/faults", control.clear_faults),
        ("POST", PREFIX + "/reset", control.reset),
        ("POST", PREFIX + "/expire-tokens", control.expire_tokens),
        ("POST", PREFIX + "/itero/scans", control.create_scan),
        ("POST", PREFIX + "/itero/scans/{rx_id}/update", control.update_scan),
        ("POST", PREFIX + "/callbacks", control.send_callback),
    ]


def _from_html_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")


def _body(request: Request) -> dict[str, Any]:
    if _from_html_form(request):
        return dict(request.form or {})
    return request.json_object(optional=True)


class SandboxControl:
    """The handlers of the control endpoints."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def state(self, request: Request, params: dict[str, str]) -> Reply:
        sandbox = self._sandbox
        with sandbox.itero.lock:
            itero = {
                "accounts": sandbox.itero.accounts,
                "paired": sandbox.itero.paired,
                "orders": list(sandbox.itero.orders.values()),
            }
            reply = Reply.of_json(
                200,
                {
                    "align": {"patients": sandbox.patients, "orders": sandbox.orders},
                    "itero": itero,
                    "faults": [fault.as_dict() for fault in sandbox.faults],
                },
            )
        return reply

    def recorded_requests(self, request: Request, params: dict[str, str]) -> Reply:
        recorded = self._sandbox.requests
        call = request.arg("call")
        return Reply.of_json(200, [r.as_dict() for r in recorded if call is None or r.call == call])

    def list_faults(self, request: Request, params: dict[str, str]) -> Reply:
        return Reply.of_json(200, [fault.as_dict() for fault in self._sandbox.faults])

    def add_fault(self, request: Request, params: dict[str, str]) -> Reply:
        body = request.json_object()
        unknown = sorted(set(body) - set(_FAULT_FIELDS))
        if unknown or "call" not in body:
            raise ApiError(
                400,
                f"expected fields {', '.join(_FAULT_FIELDS)} (call required); unknown: {unknown}",
            )
        try:
            fault = self._sandbox.inject_fault(**body)
        except (TypeError, ValueError) as err:
            raise ApiError(400, str(err)) from err
        return Reply.of_json(200, {"fault": fault.as_dict()})

    def clear_faults(self, request: Request, params: dict[str, str]) -> Reply:
        self._sandbox.clear_faults()
        return Reply.of_json(200, {})

    def reset(self, request: Request, params: dict[str, str]) -> Reply:
        self._sandbox.reset()
        return Reply.of_json(200, {})

    def expire_tokens(self, request: Request, params: dict[str, str]) -> Reply:
        body = request.json_object(optional=True)
        vendor = body.get("vendor", "align")
        if vendor not in ("align", "itero"):
            raise ApiError(400, 'vendor must be "align" or "itero"')
        if vendor == "align":
            self._sandbox.expire_tokens()
        else:
            self._sandbox.itero.expire_tokens()
        return Reply.of_json(200, {"expired": vendor})

    def create_scan(self, request: Request, params: dict[str, str]) -> Reply:
        body = _body(request)
        unknown = sorted(set(body) - set(_SCAN_FIELDS))
        if unknown:
            raise ApiError(400, f"unknown fields {unknown}; expected {', '.join(_SCAN_FIELDS)}")
        arguments: dict[str, Any] = {
            key: value for key, value in body.items() if value not in ("", None)
        }
        try:
            for name in _SCAN_INT_FIELDS:
                if name in arguments:
                    arguments[name] = int(arguments[name])
            if isinstance(arguments.get("notify"), str):
                arguments["notify"] = arguments["notify"].lower() in ("1", "true", "yes", "on")
            rx_id = self._sandbox.itero.create_scan(**arguments)
        except (TypeError, ValueError) as err:
            raise ApiError(400, str(err)) from err
        if _from_html_form(request):
            return Reply.redirect(PREFIX + "/", 303)
        return Reply.of_json(200, {"rxId": rx_id})

    def update_scan(self, request: Request, params: dict[str, str]) -> Reply:
        body = _body(request)
        try:
            self._sandbox.itero.update_scan(params["rx_id"], notify=bool(body.get("notify", True)))
        except KeyError as err:
            raise ApiError(404, "order not found") from err
        if _from_html_form(request):
            return Reply.redirect(PREFIX + "/", 303)
        with self._sandbox.itero.lock:
            version = self._sandbox.itero.orders[params["rx_id"]]["version"]
        return Reply.of_json(200, {"rxId": params["rx_id"], "version": version})

    def send_callback(self, request: Request, params: dict[str, str]) -> Reply:
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
        return Reply.of_json(200, {"status": status})

    def page(self, request: Request, params: dict[str, str]) -> Reply:
        return Reply.of_html(200, render_page(self._sandbox))


def _table(headings: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    # Cells are escaped by the callers that build them (some hold a button).
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=9>none</td></tr>'}</table>"


def render_page(sandbox: Sandbox) -> str:
    """A small status page for people: state at a glance and a button to make a new scan."""
    with sandbox.itero.lock:
        scans = [dict(order) for order in sandbox.itero.orders.values()]
        paired = dict(sandbox.itero.paired)
    scan_rows = [
        [
            escape(o["rxId"]),
            escape(o["orderId"]),
            escape(o["accountNumber"]),
            escape(o["status"]),
            str(o["version"]),
            escape(o["patient"]["chartNumber"]),
            f'<form method=post action="{PREFIX}/itero/scans/{escape(o["rxId"])}/update">'
            "<button>Update files</button></form>",
        ]
        for o in scans
    ]
    counts: dict[str, int] = {}
    for recorded in sandbox.requests:
        counts[recorded.call] = counts.get(recorded.call, 0) + 1
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Align sandbox</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse;margin-bottom:1.5em}}</style></head><body>
<h1>Align / iTero sandbox</h1><p>Serving at {escape(sandbox.url)}.
Callbacks go to {escape(sandbox.callback_url or "(no callback URL)")}.</p>
<h2>iTero scans</h2>
<form method=post action="{PREFIX}/itero/scans">
Chart number <input name=chart_number value="MRN-1"> First name <input name=first_name value="Pat">
Last name <input name=last_name value="Example">
404s first <input name=not_ready_downloads value="0" size=2>
<button>Create a new scan</button></form>
{_table(["Rx id", "order id", "account", "status", "version", "chart number", ""], scan_rows)}
<h2>Paired lab accounts</h2>
{_table(["account", "notification URL"], [[escape(a), escape(u or "")] for a, u in paired.items()])}
<h2>Align orders</h2>
{
        _table(
            ["order id", "case id", "patient id", "status", "plan version"],
            [
                [
                    escape(o["orderId"]),
                    escape(o["caseId"]),
                    escape(o["patientId"]),
                    escape(o["status"]),
                    str(o["planVersion"]),
                ]
                for o in sandbox.orders
            ],
        )
    }
<h2>Align patients</h2>
{
        _table(
            ["patient id", "case id"],
            [[escape(p["patientId"]), escape(p["caseId"])] for p in sandbox.patients],
        )
    }
<h2>Requests seen</h2>
{_table(["call", "count"], [[escape(call), str(n)] for call, n in sorted(counts.items())])}
<p>JSON: <a href="{PREFIX}/state">state</a>, <a href="{PREFIX}/requests">requests</a>,
<a href="{PREFIX}/faults">faults</a>.</p></body></html>"""
