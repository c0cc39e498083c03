"""Traces and metrics through the OpenTelemetry API (the optional extra ``otel``).

The app only *emits*: the host brings the SDK, its exporters and its resource, as any
OpenTelemetry-instrumented library expects.  Without ``opentelemetry-api`` installed
nothing is imported, every helper here is a no-op and the cost is one ``if``.

What is emitted (names are stable; docs/operations.md lists them with alerts):

- a span per vendor call (``align.vendor_call``), per callback (``align.callback``) and per
  operation attempt (``align.operation``);
- the counter ``align.vendor.calls`` (service, call, outcome) and, from
  :func:`register_gauges`, observable gauges fed by the database.

Attributes and labels come from fixed vocabularies (service and call names written in the
code, methods, status codes, attempt numbers, ids the vendors give) and never hold patient
data or secrets.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

#: True when the OpenTelemetry API is installed (``pip install django-align-integration[otel]``).
ENABLED = importlib.util.find_spec("opentelemetry") is not None

INSTRUMENTATION = "align_integration"


def _tracer() -> Any:
    from opentelemetry import trace  # only when the extra is installed

    return trace.get_tracer(INSTRUMENTATION)


def _meter() -> Any:
    from opentelemetry import metrics  # only when the extra is installed

    return metrics.get_meter(INSTRUMENTATION)


def outcome_of(status: int | None, error: str = "") -> str:
    """A label from a fixed set: ``ok``, ``client_error``, ``rate_limited``,
    ``server_error``, or the error class name's category (``timeout``, ``connection``…)."""
    if error:
        return error
    if status is None:
        return "unknown"
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "client_error"
    return "server_error"


@dataclass
class CallRecord:
    """What a vendor call learned, set by the caller inside :func:`vendor_call`."""

    span: Any = None
    status: int | None = None
    attempt: int = 1
    request_id: str = ""
    error: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def finish(
        self, *, status: int | None = None, request_id: str = "", error: str = "", attempt: int = 1
    ) -> None:
        self.status, self.request_id, self.error, self.attempt = (
            status,
            request_id,
            error,
            attempt,
        )


def _tracing() -> bool:
    """Whether a span would record anything: until the host sets a tracer provider, the
    API's proxy hands out spans that record nothing, so none is started (one ``isinstance``
    instead of a span's context switches on every vendor call)."""
    if not ENABLED:
        return False
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@contextmanager
def vendor_call(service: str, call: str, method: str) -> Iterator[CallRecord]:
    """A span around one vendor call and one count in ``align.vendor.calls``.

    ``service`` is ``align`` or ``itero``; ``call`` the protocol's call name (never a URL,
    which may hold ids the host considers private).
    """
    record = CallRecord()
    if not ENABLED:
        yield record
        return
    attributes = {"align.service": service, "align.call": call, "http.request.method": method}
    # Counted even without a span: a host may collect metrics without traces.
    with _client_span(attributes) as span:
        record.span = span
        try:
            yield record
        except BaseException as error:
            record.error = record.error or type(error).__name__
            raise
        finally:
            outcome = outcome_of(record.status, record.error)
            if span is not None:
                _finish_span(span, record, outcome)
            _calls_counter().add(1, {**_labels(attributes), "outcome": outcome})


def _client_span(attributes: dict[str, Any]) -> Any:
    """The vendor call's span, or ``nullcontext()`` (yielding ``None``) while not tracing."""
    if not _tracing():
        return nullcontext()
    from opentelemetry.trace import SpanKind

    return _tracer().start_as_current_span(
        "align.vendor_call", kind=SpanKind.CLIENT, attributes=attributes
    )


def _finish_span(span: Any, record: CallRecord, outcome: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    if record.status is not None:
        span.set_attribute("http.response.status_code", record.status)
    span.set_attribute("align.attempt", record.attempt)
    span.set_attribute("align.outcome", outcome)
    if record.request_id:
        span.set_attribute("align.request_id", record.request_id)
    if outcome != "ok":
        span.set_status(Status(StatusCode.ERROR))


def _labels(attributes: dict[str, Any]) -> dict[str, str]:
    return {"service": attributes["align.service"], "call": attributes["align.call"]}


_COUNTERS: dict[str, Any] = {}


def _calls_counter() -> Any:
    counter = _COUNTERS.get("calls")
    if counter is None:
        counter = _COUNTERS["calls"] = _meter().create_counter(
            "align.vendor.calls", unit="{call}", description="Calls to Align and iTero"
        )
    return counter


@contextmanager
def span(name: str, **attributes: str | int) -> Iterator[Any]:
    """A span for one unit of the app's own work (a callback, an operation attempt).

    Set more attributes with ``set_attribute`` on the yielded span (``None`` when the
    extra is not installed: use :func:`set_attribute`).
    """
    if not _tracing():
        yield None
        return
    with _tracer().start_as_current_span(
        name, attributes={f"align.{key}": value for key, value in attributes.items()}
    ) as current:
        yield current


def set_attribute(current: Any, key: str, value: str | int) -> None:
    """Set ``align.<key>`` on a span from :func:`span`; a no-op without the extra."""
    if current is not None:
        current.set_attribute(f"align.{key}", value)


#: Observations: a name, a description, a unit and a function giving ``(value, labels)``
#: pairs.  The monitoring module (which may read the database) provides them.
Observation = tuple[str, str, str, Callable[[], list[tuple[float, dict[str, str]]]]]

_REGISTERED: set[str] = set()


def register_gauges(observations: list[Observation]) -> None:
    """Register observable gauges once per process (``AppConfig.ready``)."""
    if not ENABLED:
        return
    from opentelemetry.metrics import CallbackOptions
    from opentelemetry.metrics import Observation as OtelObservation

    meter = _meter()
    for name, description, unit, observe in observations:
        if name in _REGISTERED:
            continue

        def callback(
            options: CallbackOptions, observe: Callable[..., Any] = observe
        ) -> list[OtelObservation]:
            return [OtelObservation(value, labels) for value, labels in observe()]

        meter.create_observable_gauge(
            name, callbacks=[callback], unit=unit, description=description
        )
        _REGISTERED.add(name)
