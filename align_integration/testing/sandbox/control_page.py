"""The sandbox's status page for people, at ``/__sandbox__/``.

State at a glance — iTero scans (with buttons for a new revision or a lab status), pairings,
Align orders and patients, how many requests of each call were seen — and a form to make a
new scan. All text from requests is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Protocol

from .faults import Fault
from .itero import LAB_STATUSES, IteroLab
from .wire import RecordedRequest

PREFIX = "/__sandbox__"
_STATUS_OPTIONS = "".join(f"<option>{escape(status)}</option>" for status in LAB_STATUSES)


class SandboxView(Protocol):
    """What the page (and the state endpoint) read of the :class:`~.server.Sandbox`."""

    callback_url: str | None

    @property
    def url(self) -> str: ...

    @property
    def itero(self) -> IteroLab: ...

    @property
    def requests(self) -> list[RecordedRequest]: ...

    @property
    def patients(self) -> list[dict[str, Any]]: ...

    @property
    def orders(self) -> list[dict[str, Any]]: ...

    @property
    def faults(self) -> list[Fault]: ...


def _table(headings: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    # Cells are escaped by the callers that build them (some hold a button).
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=9>none</td></tr>'}</table>"


def render_page(sandbox: SandboxView) -> str:
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
            "<button>New revision</button></form>"
            f'<form method=post action="{PREFIX}/itero/scans/{escape(o["rxId"])}/status">'
            f"<select name=status>{_STATUS_OPTIONS}</select><button>Set status</button></form>",
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
