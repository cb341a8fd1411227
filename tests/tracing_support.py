"""An in-memory span exporter installed once per test process, and tracing turned on or off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sous_common import tracing

_EXPORTER = InMemorySpanExporter()


def exporter() -> InMemorySpanExporter:
    """The process's span exporter, emptied; installed on the first call."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


@contextmanager
def tracing_on() -> Iterator[InMemorySpanExporter]:
    """Tracing on, as `tracing.setup()` leaves it, with spans kept in memory."""
    spans = exporter()
    tracing._state["on"] = True
    try:
        yield spans
    finally:
        tracing._state["on"] = False
