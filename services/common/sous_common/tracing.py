"""OpenTelemetry traces: W3C trace context in Kafka headers and outbox rows.

Off by default. `setup()` turns tracing on only when `OTEL_TRACES_EXPORTER` names an exporter
(`otlp` over HTTP/protobuf, or `console`) and `OTEL_SDK_DISABLED` is not `true`; the exporter,
endpoint, sampler, batching and resource then follow the standard `OTEL_*` variables. Off, no
SDK provider is set up and every helper here returns at its first line: no span, no attribute,
no header.

The spans of one message: `consume` (a child of the context in its headers) → `handle` →
`commit`; the messages it causes carry the `handle` context through the outbox (a column
beside each row) to the relay's `publish` span, whose context goes into their headers. A
batch handler gets a context per message, found by the outgoing message's `causation_id`, so
each run keeps one trace.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sous_contracts.envelope import Envelope

TRACER = trace.get_tracer("sous")
"""The API's proxy tracer: a no-op until `setup()` installs a provider."""
HEADERS = ("traceparent", "tracestate")
"""The W3C trace context headers carried on Kafka records."""

_PROPAGATOR = TraceContextTextMapPropagator()
_BATCH = otel_context.create_key("sous-batch-contexts")
_state: dict[str, Any] = {"on": False, "provider": None}
_NOTHING = contextlib.nullcontext()


class TracingSettingsError(ValueError):
    """An `OTEL_*` variable names something this service cannot do."""


def enabled() -> bool:
    """True once `setup()` turned tracing on in this process."""
    return bool(_state["on"])


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """True when the `OTEL_*` variables ask for traces (off unless an exporter is named)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return env.get("OTEL_TRACES_EXPORTER", "").strip().lower() not in ("", "none")


def setup(service: str, env: Mapping[str, str] = os.environ) -> bool:
    """Install the SDK's tracer provider when the environment asks for it; True when on.

    Raises:
        TracingSettingsError: an exporter or protocol this service does not support.
    """
    if _state["on"] or not wanted(env):
        return enabled()
    # Imported here: a service with tracing off never loads the SDK.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporters: list[SpanExporter] = []
    for name in (n.strip() for n in env["OTEL_TRACES_EXPORTER"].lower().split(",")):
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                raise TracingSettingsError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported;"
                    " expected http/protobuf"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            raise TracingSettingsError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; expected otlp, console or none"
            )
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": f"sous-{service}"})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _state.update(on=True, provider=provider)
    return True


def shutdown() -> None:
    """Export the spans still buffered (call when the service stops)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush(5_000)


def extract(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    """Return the context carried by a Kafka record's headers (empty when none)."""
    carrier = {
        k: v.decode(errors="replace") for k, v in headers or () if k in HEADERS and v is not None
    }
    return _PROPAGATOR.extract(carrier)


def _inject(ctx: Context | None = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, ctx)
    return carrier


def handling(
    consumer: str, pairs: list[tuple[Any, Envelope]], batch: bool
) -> AbstractContextManager[None]:
    """Run a handler inside a `consume` and a `handle` span per message.

    Each message's spans continue the trace in its record's headers. The handler sees, per
    message id, the context its outgoing messages continue (`carrier_for`).
    """
    return _handling(consumer, pairs, batch) if _state["on"] else _NOTHING


@contextlib.contextmanager
def _handling(consumer: str, pairs: list[tuple[Any, Envelope]], batch: bool) -> Iterator[None]:
    spans: list[Span] = []
    contexts: dict[uuid.UUID, Context] = {}
    for record, message in pairs:
        consume = TRACER.start_span(
            f"consume {message.type}", context=extract(record.headers), kind=SpanKind.CONSUMER
        )
        handle = TRACER.start_span(
            f"handle {message.type}", context=trace.set_span_in_context(consume)
        )
        spans += [handle, consume]
        contexts[message.message_id] = trace.set_span_in_context(handle)
        if not consume.is_recording():
            continue  # sampled out: no attributes built
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": consumer,
            "messaging.message.id": str(message.message_id),
            "sous.message_type": message.type,
            "sous.batch": batch,
        }
        if message.correlation_id is not None:
            attributes["sous.correlation_id"] = str(message.correlation_id)
        if (run := getattr(message, "order_run_id", None)) is not None:
            attributes["sous.order_run_id"] = str(run)
        consume.set_attributes(attributes)
    # One message: its handle span is current. A batch: no span is (each has its own).
    current = next(iter(contexts.values())) if len(contexts) == 1 else Context()
    token = otel_context.attach(otel_context.set_value(_BATCH, contexts, current))
    try:
        yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        otel_context.detach(token)
        for span in spans:
            span.end()


def step(name: str) -> AbstractContextManager[None]:
    """A span named `name` under each message being handled (or the current span)."""
    return _step(name) if _state["on"] else _NOTHING


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    contexts = otel_context.get_value(_BATCH)
    parents: list[Context] = list(contexts.values()) if isinstance(contexts, dict) else []
    if not parents and trace.get_current_span().get_span_context().is_valid:
        parents = [otel_context.get_current()]
    spans = [TRACER.start_span(name, context=parent) for parent in parents]
    try:
        yield
    except BaseException as exc:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for span in spans:
            span.end()


def current() -> Context | None:
    """The context to hand to work run in another task (None when tracing is off)."""
    return otel_context.get_current() if _state["on"] else None


def within(ctx: Context | None) -> AbstractContextManager[None]:
    """Make `ctx` (from `current()`) the current context for a block."""
    return _NOTHING if ctx is None else _within(ctx)


@contextlib.contextmanager
def _within(ctx: Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def resumed(carrier: Mapping[str, str], name: str) -> AbstractContextManager[None]:
    """Run a block in a span `name` that continues a stored context (W3C headers).

    For work nothing consumed started, such as a durable timer: it goes on in the trace of
    what set it. Nothing when tracing is off or `carrier` is empty.
    """
    return _resumed(carrier, name) if _state["on"] and carrier else _NOTHING


@contextlib.contextmanager
def _resumed(carrier: Mapping[str, str], name: str) -> Iterator[None]:
    span = TRACER.start_span(name, context=_PROPAGATOR.extract(dict(carrier)))
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    except BaseException as exc:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        otel_context.detach(token)
        span.end()


def carrier_for(message: Envelope) -> dict[str, str] | None:
    """The trace context an outgoing message continues, as W3C headers; None when none.

    The context of the message that caused it when that one is being handled here, else
    the current span's (a REST call, or a single message's handler).
    """
    if not _state["on"]:
        return None
    contexts = otel_context.get_value(_BATCH)
    if isinstance(contexts, dict) and message.causation_id in contexts:
        return _inject(contexts[message.causation_id])
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    return _inject()


def current_headers() -> dict[str, str]:
    """The current span's context as W3C headers (empty when off or none)."""
    if not _state["on"] or not trace.get_current_span().get_span_context().is_valid:
        return {}
    return _inject()


def publishing(topic: str, message_type: str, stored: Mapping[str, str]) -> Span | None:
    """Start the relay's `publish` span, a child of the context stored with an outbox row.

    Returns None when tracing is off; the caller then passes `stored` on as headers.
    """
    if not _state["on"]:
        return None
    return TRACER.start_span(
        f"publish {message_type}",
        context=_PROPAGATOR.extract(dict(stored)),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
        },
    )


def headers_of(span: Span) -> dict[str, str]:
    """A span's context as W3C headers."""
    return _inject(trace.set_span_in_context(span))


def ended(span: Span, error: BaseException | None = None) -> None:
    """End a span, marked failed when `error` is set."""
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()
