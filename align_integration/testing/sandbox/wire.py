"""Wire-level value types shared by the sandbox's two vendor services.

An incoming HTTP request is parsed once into a :class:`Request`; a handler answers with a
:class:`Reply` (JSON, HTML, a redirect, or a file streamed from disk) or raises
:class:`ApiError`. Every request the sandbox sees or sends is kept as a
:class:`RecordedRequest` so that tests can assert on exactly what went over the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, BinaryIO
from urllib.parse import parse_qs


class Headers(dict[str, str]):
    """HTTP headers: a plain dict with lower-case keys and case-insensitive look-ups."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            lowered = key.lower()
            # A repeated header is folded into one value, as RFC 9110 allows.
            if super().__contains__(lowered):
                value = f"{super().__getitem__(lowered)}, {value}"
            super().__setitem__(lowered, value)

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class ApiError(Exception):
    """Raised by a handler to answer ``status`` with ``{"errors": [...]}`` (or ``payload``)."""

    def __init__(self, status: int, *errors: str, payload: Any = None) -> None:
        super().__init__(f"{status}: {'; '.join(errors)}")
        self.status = status
        self.errors = list(errors)
        self.payload = payload

    def reply(self) -> Reply:
        payload = self.payload if self.payload is not None else {"errors": self.errors}
        return Reply.of_json(self.status, payload)


@dataclass
class Reply:
    """What a handler answers: a status, headers and either bytes or an open file to stream."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: BinaryIO | None = None
    length: int = 0

    @classmethod
    def of_json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return cls(status, json.dumps(payload).encode(), all_headers)

    @classmethod
    def of_errors(cls, status: int, *errors: str) -> Reply:
        return cls.of_json(status, {"errors": list(errors)})

    @classmethod
    def of_html(cls, status: int, text: str) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"Location": location})

    @classmethod
    def of_file(cls, stream: BinaryIO, length: int, content_type: str, filename: str) -> Reply:
        headers = {
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        return cls(200, b"", headers, stream=stream, length=length)

    @property
    def content_length(self) -> int:
        return self.length if self.stream is not None else len(self.body)

    def copy(self) -> Reply:
        """A copy safe to hand out again (only byte bodies are ever stored for replay)."""
        return Reply(self.status, self.body, dict(self.headers))


@dataclass
class RecordedRequest:
    """One request as it went over the wire; ``call`` names the protocol call it matched.

    Outgoing requests (``callback``, ``notify``) are recorded too: ``url`` then holds the
    target, ``status`` what the host answered, ``error`` why nothing was answered.
    """

    call: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any | None
    form: dict[str, str] | None
    idempotency_key: str | None
    at: float
    status: int | None = None
    url: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the body as text when it decodes, else base64."""
        data: dict[str, Any] = {
            "call": self.call,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "json": self.json,
            "form": self.form,
            "idempotency_key": self.idempotency_key,
            "at": self.at,
            "status": self.status,
            "url": self.url,
            "error": self.error,
        }
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            data["body"] = None
            data["body_base64"] = base64.b64encode(self.body).decode()
        return data


@dataclass
class Request:
    """An incoming request, parsed once: JSON and form bodies are decoded leniently."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any | None = None
    json_ok: bool = False
    form: dict[str, str] | None = None

    @classmethod
    def parse(
        cls, method: str, path: str, query_string: str, headers: Headers, body: bytes
    ) -> Request:
        request = cls(method, path, parse_qs(query_string, keep_blank_values=True), headers, body)
        if body:
            try:
                request.json = json.loads(body)
                request.json_ok = True
            except (ValueError, UnicodeDecodeError):
                pass
        request.form = parse_form(headers.get("content-type", ""), body)
        return request

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key") or None

    def arg(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json_object(self, *, optional: bool = False) -> dict[str, Any]:
        """The body as a JSON object, or a 400 (an empty body is ``{}`` when ``optional``)."""
        if optional and not self.body.strip():
            return {}
        if not self.json_ok or not isinstance(self.json, dict):
            raise ApiError(400, "body must be a JSON object")
        return self.json

    def form_fields(self) -> dict[str, str]:
        """The body as form fields, or a 400."""
        if self.form is None:
            raise ApiError(400, "body must be form data")
        return self.form


def parse_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """Form fields of an urlencoded or multipart body; ``None`` when the body is not a form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    if kind not in ("", "application/x-www-form-urlencoded"):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if kind == "" and text.lstrip().startswith(("{", "[")):
        return None  # a JSON body sent without a Content-Type is not a form
    try:
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        return None
    return {key: values[0] for key, values in parsed.items()}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str] | None:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename():
            continue  # file parts carry no form field the protocol reads
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", errors="replace")
    return fields
