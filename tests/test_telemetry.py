"""Traces and metrics (extra ``otel``) seen by an in-memory exporter and metric reader.

OpenTelemetry allows one global provider per process, so one pair is installed for the
test session; each test clears the exported spans first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from align_integration import telemetry
from align_integration.models import CallbackEvent, RemoteOperation


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()

    def metric_points(self) -> dict[str, list[tuple[float, dict[str, Any]]]]:
        points: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", 0)
                        points.setdefault(metric.name, []).append(
                            (value, dict(point.attributes or {}))
                        )
        return points


_INSTALLED: Telemetry | None = None


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = Telemetry()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_INSTALLED.spans))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_INSTALLED.reader]))
    _INSTALLED.spans.clear()
    yield _INSTALLED


def test_the_extra_is_detected() -> None:
    assert telemetry.ENABLED


def test_a_vendor_call_is_a_span_and_a_count_by_outcome(otel: Telemetry) -> None:
    with telemetry.vendor_call("align", "create_patient", "POST") as call:
        call.finish(status=503, request_id="req-1", attempt=2)
    with telemetry.vendor_call("align", "create_patient", "POST") as call:
        call.finish(status=200, request_id="req-2")
    with pytest.raises(TimeoutError), telemetry.vendor_call("itero", "download", "GET"):
        raise TimeoutError
    spans = otel.spans.get_finished_spans()
    assert [span.name for span in spans] == ["align.vendor_call"] * 3
    first = dict(spans[0].attributes or {})
    assert first["align.service"] == "align" and first["align.call"] == "create_patient"
    assert first["http.response.status_code"] == 503 and first["align.attempt"] == 2
    assert first["align.request_id"] == "req-1" and first["align.outcome"] == "server_error"
    assert dict(spans[2].attributes or {})["align.outcome"] == "TimeoutError"
    counts = {
        (labels["service"], labels["call"], labels["outcome"]): value
        for value, labels in otel.metric_points()["align.vendor.calls"]
    }
    assert counts[("align", "create_patient", "server_error")] >= 1
    assert counts[("align", "create_patient", "ok")] >= 1
    assert counts[("itero", "download", "TimeoutError")] >= 1


@pytest.mark.django_db
def test_the_gauges_read_the_backlog(otel: Telemetry, make_case: Any) -> None:
    case = make_case()
    due_since = timezone.now() - dt.timedelta(minutes=5)
    RemoteOperation.objects.create(
        case=case,
        kind=RemoteOperation.CREATE_PATIENT,
        dedupe_key="gauge-1",
        state=RemoteOperation.RETRY_SCHEDULED,
        next_attempt_at=due_since,
    )
    RemoteOperation.objects.create(
        case=case, kind=RemoteOperation.CREATE_ORDER, dedupe_key="gauge-2", state="failed"
    )
    CallbackEvent.objects.create(
        webhook_id="msg_gauge", event_type="case.status_changed", body="{}", state="failed"
    )
    points = otel.metric_points()
    by_state = {labels["state"]: value for value, labels in points["align.operations"]}
    assert by_state["retry_scheduled"] == 1 and by_state["failed"] == 1
    [(age, _)] = points["align.operations.oldest_due_age"]
    assert age >= 290
    attention = {labels["state"]: value for value, labels in points["align.callbacks.attention"]}
    assert attention["failed"] == 1
    assert "align.itero.scans_waiting" in points


CANARY = {
    "first_name": "Canaryfirst",
    "last_name": "Canarylast",
    "mrn": "CANARY-MRN-7781",
    "date_of_birth": dt.date(1961, 7, 23),
}
CANARY_TEXTS = ["canaryfirst", "canarylast", "canary-mrn-7781", "1961-07-23", "23/07/1961"]


def everything_exported(otel: Telemetry) -> str:
    """Every span name, attribute key and value, event and metric label, as one text."""
    parts: list[str] = []
    for span in otel.spans.get_finished_spans():
        parts.append(span.name)
        parts += [f"{key}={value}" for key, value in (span.attributes or {}).items()]
        for event in span.events:
            parts.append(event.name)
            parts += [f"{key}={value}" for key, value in (event.attributes or {}).items()]
    for name, points in otel.metric_points().items():
        parts.append(name)
        parts += [f"{key}={value}" for _, labels in points for key, value in labels.items()]
    return "\n".join(parts).lower()


@pytest.mark.django_db
def test_sending_a_case_is_traced_without_a_patient_value(
    otel: Telemetry, align_sandbox: Any, make_case: Any
) -> None:
    from align_integration import Align

    case = make_case(**CANARY)
    # The service refuses once, echoing the patient the way a careless service would.
    align_sandbox.inject_fault(
        "create_patient",
        status=422,
        body={"errors": ["Patient CANARYFIRST CANARYLAST born 23/07/1961, MRN canary-mrn-7781"]},
    )
    assert not Align().initiate_align_order(None, case).ok
    assert Align().initiate_align_order(None, case).ok

    spans = otel.spans.get_finished_spans()
    calls = [dict(span.attributes or {}) for span in spans if span.name == "align.vendor_call"]
    called = {(attrs["align.call"], attrs["align.outcome"]) for attrs in calls}
    assert ("create_patient", "client_error") in called
    assert {("create_patient", "ok"), ("create_order", "ok"), ("upload_assets", "ok")} <= called
    operations = [span for span in spans if span.name == "align.operation"]
    kinds = {dict(span.attributes or {})["align.kind"] for span in operations}
    assert {"create_patient", "create_order", "upload_assets"} <= kinds
    # A vendor call made during an operation attempt is that attempt's child.
    operation_ids = {span.context.span_id for span in operations}
    assert any(span.parent and span.parent.span_id in operation_ids for span in spans)

    exported = everything_exported(otel)
    for text in CANARY_TEXTS:
        assert text not in exported, text


@pytest.mark.django_db
def test_each_callback_is_a_span_with_its_type_and_outcome(
    otel: Telemetry, make_case: Any, client: Any
) -> None:
    from align_integration.testing import post_callback

    case = make_case(**CANARY)
    data = {"caseId": str(case.pk), "status": "accepted", "changedAt": "2026-11-20T12:00:00Z"}
    assert post_callback(client, "case.status_changed", data).status_code == 200
    unknown = {**data, "caseId": "no-such-case"}
    assert post_callback(client, "case.status_changed", unknown).status_code == 202
    assert post_callback(client, "case.status_changed", data, secret="whsec_" + "A" * 32)
    spans = [s for s in otel.spans.get_finished_spans() if s.name == "align.callback"]
    seen = [
        (
            dict(s.attributes or {}).get("align.event_type"),
            dict(s.attributes or {})["align.outcome"],
        )
        for s in spans
    ]
    assert seen == [
        ("case.status_changed", "processed"),
        ("case.status_changed", "unmatched"),
        (None, "forbidden"),
    ]
    assert all(text not in everything_exported(otel) for text in CANARY_TEXTS)


COUNT_WITHOUT_TRACES = """
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))  # metrics, no tracer
from align_integration import telemetry

with telemetry.vendor_call("align", "find_patients", "GET") as record:
    record.finish(status=200)
try:
    with telemetry.vendor_call("align", "create_order", "POST"):
        raise TimeoutError
except TimeoutError:
    pass
with telemetry.span("align.operation", kind="clincheck_accept") as current:
    telemetry.set_attribute(current, "outcome", "succeeded")
points = [
    (p.attributes["call"], p.attributes["outcome"], p.value)
    for r in reader.get_metrics_data().resource_metrics
    for s in r.scope_metrics
    for m in s.metrics
    if m.name == "align.vendor.calls"
    for p in m.data.data_points
]
result = {"tracing": telemetry._tracing(), "span": current is None, "points": sorted(points)}
print(json.dumps(result))
"""


def test_calls_are_counted_when_the_host_collects_metrics_but_no_traces() -> None:
    """No tracer provider set: no span is started (the API's would record nothing), and
    every vendor call is counted all the same.  In a process of its own: OpenTelemetry
    takes one global provider per process, and this suite's is set by the fixture."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", COUNT_WITHOUT_TRACES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "tracing": False,
        "span": True,
        "points": [["create_order", "TimeoutError", 1], ["find_patients", "ok", 1]],
    }
