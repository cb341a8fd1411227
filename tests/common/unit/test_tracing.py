"""Tracing: off by default creates no span and adds no header; on, each message's spans
continue the trace in its headers and the messages it causes carry that trace on."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from opentelemetry import trace

from sous_common import tracing
from sous_contracts.runs import StartOrderRun
from sous_contracts.steps import StepFinished
from sous_contracts.testing import sample_messages
from tests.tracing_support import exporter, tracing_on

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"


def _record(message, headers=()):
    return SimpleNamespace(topic="t", partition=0, offset=7, headers=list(headers))


def _sample(kind):
    return next(m for m in sample_messages() if isinstance(m, kind))


def _exercise() -> tuple[dict[str, str] | None, dict[str, str]]:
    """Everything a service does with traces for one message; what it would send."""
    start = _sample(StartOrderRun)
    caused = start.model_copy(update={"message_id": uuid.uuid4(), "causation_id": start.message_id})
    record = _record(start, [("traceparent", PARENT.encode())])
    with tracing.handling("sous-test", [(record, start)], batch=False), tracing.step("commit"):
        carrier = tracing.carrier_for(caused)
        headers = tracing.current_headers()
    span = tracing.publishing("t", "StartOrderRun", {"traceparent": PARENT})
    assert span is None or tracing.enabled()
    return carrier, headers


def test_off_by_default_without_otel_variables() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.setup("test", {})
    assert not tracing.enabled()


def test_tracing_off_creates_no_spans_and_adds_no_headers() -> None:
    spans = exporter()  # a real SDK provider is installed: any span made would land here
    carrier, headers = _exercise()
    assert carrier is None
    assert headers == {}
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert spans.get_finished_spans() == ()


def test_tracing_on_continues_the_trace_in_the_headers() -> None:
    with tracing_on() as spans:
        carrier, headers = _exercise()
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["commit", "handle StartOrderRun", "consume StartOrderRun"]
    finished = {s.name: s for s in spans.get_finished_spans()}
    consume, handle = finished["consume StartOrderRun"], finished["handle StartOrderRun"]
    assert f"{consume.context.trace_id:032x}" == PARENT_TRACE
    assert consume.parent is not None
    assert f"{consume.parent.span_id:016x}" == PARENT[36:52]
    assert handle.parent is not None
    assert handle.parent.span_id == consume.context.span_id
    assert carrier is not None
    assert headers
    assert carrier["traceparent"] == f"00-{PARENT_TRACE}-{handle.context.span_id:016x}-01"


def test_a_batch_gives_each_message_its_own_trace() -> None:
    first, second = _sample(StepFinished), _sample(StepFinished)
    second = second.model_copy(update={"message_id": uuid.uuid4()})
    other = "5bf92f3577b34da6a3ce929d0e0e4736"
    records = [
        (_record(first, [("traceparent", PARENT.encode())]), first),
        (_record(second, [("traceparent", f"00-{other}-00f067aa0ba902b7-01".encode())]), second),
    ]
    replies = [
        m.model_copy(update={"message_id": uuid.uuid4(), "causation_id": m.message_id})
        for _, m in records
    ]
    with tracing_on() as spans, tracing.handling("sous-test", records, batch=True):
        carriers = [tracing.carrier_for(r) for r in replies]
        assert tracing.current_headers() == {}  # no one trace stands for the batch
        with tracing.step("commit"):
            pass
    assert [c and c["traceparent"][3:35] for c in carriers] == [PARENT_TRACE, other]
    commits = [s for s in spans.get_finished_spans() if s.name == "commit"]
    assert sorted(f"{s.context.trace_id:032x}" for s in commits) == [PARENT_TRACE, other]


def test_an_unknown_exporter_is_named() -> None:
    with pytest.raises(tracing.TracingSettingsError, match="OTEL_TRACES_EXPORTER: unknown"):
        tracing.setup("test", {"OTEL_TRACES_EXPORTER": "zipkin"})
    assert not tracing.enabled()
