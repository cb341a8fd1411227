"""The outbox keeps the trace of the message being handled; the relay's publish continues it."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from sous_common import tracing
from sous_common.outbox import OutboxRelay, add
from sous_contracts.runs import StartOrderRun
from sous_contracts.testing import sample_messages
from tests.tracing_support import exporter, tracing_on

pytestmark = [pytest.mark.postgres]

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"


async def _handle_and_relay(pool) -> tuple[object, dict[str, str]]:
    """Handle one traced message that emits another; return the stored context and headers."""
    start = next(m for m in sample_messages() if isinstance(m, StartOrderRun))
    caused = start.model_copy(update={"message_id": uuid.uuid4(), "causation_id": start.message_id})
    record = SimpleNamespace(
        topic="t", partition=0, offset=1, headers=[("traceparent", PARENT.encode())]
    )
    with tracing.handling("sous-test", [(record, start)], batch=False):
        async with pool.acquire() as conn, conn.transaction():
            await add(conn, [caused], schema="ignored")
    stored = await pool.fetchval("SELECT trace_context FROM outbox")
    sent: list[dict[str, str]] = []

    async def publish(topic, key, value, headers):
        sent.append(headers)

        async def ack() -> None:
            return None

        return ack()

    await OutboxRelay(pool, publish, schema="ignored").drain()
    (headers,) = sent
    return stored, headers


async def test_tracing_on_the_relay_publish_continues_the_stored_trace(pool) -> None:
    with tracing_on() as spans:
        stored, headers = await _handle_and_relay(pool)
    finished = {s.name: s for s in spans.get_finished_spans()}
    handle, publish = finished["handle StartOrderRun"], finished["publish StartOrderRun"]
    assert stored is not None
    assert PARENT_TRACE in stored
    assert publish.parent is not None
    assert publish.parent.span_id == handle.context.span_id
    assert headers["traceparent"] == f"00-{PARENT_TRACE}-{publish.context.span_id:016x}-01"
    assert headers["type"] == "StartOrderRun"


async def test_tracing_off_stores_nothing_and_adds_no_header(pool) -> None:
    spans = exporter()
    stored, headers = await _handle_and_relay(pool)
    assert stored is None
    assert headers == {"type": "StartOrderRun"}
    assert spans.get_finished_spans() == ()
