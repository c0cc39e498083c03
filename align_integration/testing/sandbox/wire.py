"""Wire-level types shared by every part of the sandbox.

Requests and answers are werkzeug's: :class:`ApiRequest` adds the lenient JSON and form
readings the vendor handlers need, and the ``*_reply`` functions build the answers (JSON,
HTML, a redirect, a file streamed from disk). A handler that refuses raises
:class:`ApiError`. :class:`Route` names one call of a protocol and its handler. Every request
the sandbox sees or sends is kept as a :class:`RecordedRequest` so that tests can assert on
exactly what went over the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

MAX_BODY = 32 * 1024 * 1024
CHUNK = 64 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[["ApiRequest", dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    """One call of a protocol: its name, method, path (``{name}`` parameters) and handler."""

    call: str
    method: str
    path: str
    handler: Handler


class ApiError(Exception):
    """Raised by a handler to answer ``status`` with ``{"errors": [...]}`` (or ``payload``)."""

    def __init__(self, status: int, *errors: str, payload: Any = None) -> None:
        super().__init__(f"{status}: {'; '.join(errors)}")
        self.status = status
        self.errors = list(errors)
        self.payload = payload

    def reply(self) -> Response:
        payload = self.payload if self.payload is not None else {"errors": self.errors}
        return json_reply(self.status, payload)


class ApiRequest(Request):
    """An incoming request; the body is read once, JSON and form bodies are decoded leniently."""

    max_content_length = MAX_BODY

    @cached_property
    def body(self) -> bytes:
        return self.get_data(cache=True)

    @cached_property
    def parsed_json(self) -> tuple[bool, Any]:
        """``(True, value)`` for a JSON body (whatever its Content-Type), else ``(False, None)``."""
        if not self.body:
            return False, None
        try:
            return True, json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return False, None

    @cached_property
    def form_or_none(self) -> dict[str, str] | None:
        """Form fields (first value of each; file parts left out), or ``None`` for other bodies.

        A body without a Content-Type counts as a form when it parses as one, as it always has.
        """
        if self.mimetype in FORM_TYPES:
            _ = self.body  # read (and cache) the body first: the form parser reads the cache
            return self.form.to_dict()
        if self.mimetype:
            return None
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if text.lstrip().startswith(("{", "[")):
            return None  # a JSON body sent without a Content-Type is not a form
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError:
            return None
        fields: dict[str, str] = {}
        for key, value in pairs:
            fields.setdefault(key, value)
        return fields

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key") or None

    def arg(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        return self.args.get(name)

    def json_object(self, *, optional: bool = False) -> dict[str, Any]:
        """The body as a JSON object, or a 400 (an empty body is ``{}`` when ``optional``)."""
        if optional and not self.body.strip():
            return {}
        ok, value = self.parsed_json
        if not ok or not isinstance(value, dict):
            raise ApiError(400, "body must be a JSON object")
        return value

    def form_fields(self) -> dict[str, str]:
        """The body as form fields, or a 400."""
        if self.form_or_none is None:
            raise ApiError(400, "body must be form data")
        return self.form_or_none


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status, dict(headers or {}), content_type="application/json"
    )


def errors_reply(status: int, *errors: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_reply(status, {"errors": list(errors)}, headers)


def html_reply(status: int, text: str) -> Response:
    return Response(text, status, content_type="text/html; charset=utf-8")


def redirect_reply(location: str, status: int = 302) -> Response:
    return Response(b"", status, {"Location": location})


def file_reply(stream: BinaryIO, length: int, content_type: str, filename: str) -> Response:
    """Stream ``stream`` (closed at the end, or when the client goes away) in chunks."""

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stream.close()

    headers = {
        "Content-Length": str(length),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return Response(chunks(), 200, headers, content_type=content_type, direct_passthrough=True)


def case_id_of(
    params: Mapping[str, str], payload: Any, form: Mapping[str, str] | None
) -> str | None:
    """The Align ``caseId`` a request is about: from the path, the body, or a callback's data."""
    if params.get("case_id"):
        return params["case_id"]
    if isinstance(payload, dict):
        data = payload.get("data")
        for source in (payload, data if isinstance(data, dict) else {}):
            if isinstance(source.get("caseId"), str):
                return str(source["caseId"])
    if form and form.get("caseId"):
        return form["caseId"]
    return None


@dataclass
class RecordedRequest:
    """One request as it went over the wire; ``call`` names the protocol call it matched.

    Outgoing requests (``callback``, ``notify``) are recorded too: ``url`` then holds the
    target, ``status`` what the host answered, ``error`` why nothing was answered.
    ``acted`` tells that the service acted on it (a 2xx/3xx first answer, not a replay);
    ``replayed`` that it was answered from an earlier request with the same Idempotency-Key.
    """

    call: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any | None
    form: dict[str, str] | None
    idempotency_key: str | None
    at: float
    status: int | None = None
    url: str | None = None
    error: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    acted: bool = False
    replayed: bool = False

    @property
    def case_id(self) -> str | None:
        """The Align ``caseId`` this request concerns (path, query, body or event data)."""
        found = case_id_of(self.params, self.json, self.form)
        if found is None and self.query.get("caseId"):
            found = self.query["caseId"][0]
        return found

    @property
    def rx_id(self) -> str | None:
        """The iTero Rx id this request concerns (path or notification body)."""
        if self.params.get("rx_id"):
            return self.params["rx_id"]
        if isinstance(self.json, dict) and isinstance(self.json.get("rxId"), str):
            return str(self.json["rxId"])
        return None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the body as text when it decodes, else base64."""
        data: dict[str, Any] = {
            "call": self.call,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "json": self.json,
            "form": self.form,
            "idempotency_key": self.idempotency_key,
            "at": self.at,
            "status": self.status,
            "url": self.url,
            "error": self.error,
            "case_id": self.case_id,
            "rx_id": self.rx_id,
            "acted": self.acted,
            "replayed": self.replayed,
        }
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            data["body"] = None
            data["body_base64"] = base64.b64encode(self.body).decode()
        return data
