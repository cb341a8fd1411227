"""A run's trace goes on through its timers: a retry is dispatched in the run's own trace."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.common import RunStatus, StepStatus
from sous_contracts.topics import STEP_COMMANDS
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import finished, run_events, start
from tests.scheduler.standins import send, standins
from tests.tracing_support import tracing_on

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def dispatches(settings, attempts: int) -> dict[int, dict[str, str]]:
    """Read ExecuteStep records until `attempts` of them; return each attempt's headers."""
    consumer = AIOKafkaConsumer(
        STEP_COMMANDS.full_name(settings.topic_prefix),
        **aiokafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: dict[int, dict[str, str]] = {}
    try:
        async with asyncio.timeout(30):
            while len(seen) < attempts:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        message = decode_message(r.value)
                        if message.type == "ExecuteStep":
                            headers = {k: v.decode() for k, v in r.headers}
                            seen[message.attempt] = headers
    finally:
        await consumer.stop()
    return seen


def trace_id(headers: dict[str, str]) -> str:
    version, trace, _span, _flags = headers["traceparent"].split("-")
    assert version == "00"
    return trace


async def test_a_retry_woken_by_its_timer_continues_the_run_s_trace(
    kafka_settings, scheduler
) -> None:
    retried = {"run": {"kind": "noop"}, "retries": {"max": 1, "backoff": "100ms"}}
    await publish_registry(kafka_settings, scheduler, [recipe("a", "make", {"one": retried})])
    answer = lambda m: StepStatus.FAILED if m.attempt < 2 else StepStatus.SUCCEEDED  # noqa: E731
    with tracing_on():
        async with standins(kafka_settings, answer):
            await send(kafka_settings, [start("a", "make")])
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 1)
    assert finished(events)[0].status is RunStatus.SUCCEEDED
    headers = await dispatches(kafka_settings, 2)
    # The first attempt is dispatched while the command is handled, the second by the
    # retry timer: both in the trace the command started.
    assert trace_id(headers[1]) == trace_id(headers[2])
