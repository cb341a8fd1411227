"""Conditional steps on real Kafka and PostgreSQL: a false `when:` skips with its reason."""

from __future__ import annotations

import json

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import OrderRunFinished
from sous_contracts.steps import StepFinished, StepSkipped
from sous_contracts.topics import RUN_EVENTS, STEP_EVENTS
from tests.scheduler.integration.conftest import publish_registry, recipe
from tests.scheduler.integration.test_runs import read_topics, start
from tests.scheduler.standins import send, standins

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NOOP = {"run": {"kind": "noop"}}


async def test_a_false_condition_skips_with_its_reason_and_a_true_one_runs(
    kafka_settings, scheduler
) -> None:
    await publish_registry(
        kafka_settings,
        scheduler,
        [
            recipe(
                "w",
                "cond",
                {
                    "ingest": NOOP,  # the stand-in executor outputs rows = 10
                    "publish": {
                        **NOOP,
                        "needs": ["ingest"],
                        "when": "steps.ingest.outputs.rows > 100",
                    },
                    "announce": {**NOOP, "needs": ["publish"]},
                    "audit": {
                        **NOOP,
                        "needs": ["ingest"],
                        "when": "steps.ingest.outputs.rows > 0 && params.full_refresh == false",
                    },
                },
                params={"full_refresh": {"type": "boolean", "default": False}},
            )
        ],
    )
    command = start("w", "cond")
    mine = command.order_run_id

    def done(seen: list) -> bool:
        ends = [e for e in seen if isinstance(e, OrderRunFinished) and e.order_run_id == mine]
        skips = [e for e in seen if isinstance(e, StepSkipped) and e.order_run_id == mine]
        return bool(ends) and len(skips) >= 2

    async with standins(kafka_settings):
        await send(kafka_settings, [command])
        events = await read_topics(kafka_settings, [RUN_EVENTS, STEP_EVENTS], done)
    ours = [e for e in events if getattr(e, "order_run_id", None) == mine]
    end = next(e for e in ours if isinstance(e, OrderRunFinished))
    assert end.status is RunStatus.SUCCEEDED, end.reason
    skips = {e.step: e for e in ours if isinstance(e, StepSkipped)}
    assert set(skips) == {"publish", "announce"}
    assert skips["publish"].when == "steps.ingest.outputs.rows > 100"
    assert skips["publish"].seen == {"steps.ingest.outputs.rows": 10}
    assert skips["publish"].reason == (
        "when 'steps.ingest.outputs.rows > 100' was false (steps.ingest.outputs.rows = 10)"
    )
    assert skips["announce"].reason == "needed step(s) skipped: publish"
    assert {e.step for e in ours if isinstance(e, StepFinished)} == {"ingest", "audit"}
    # The scheduler's own record: the skipped steps never had an attempt.
    row = await scheduler.rt.pool.fetchrow("SELECT phase, state FROM runs WHERE id = $1", mine)
    steps = json.loads(row["state"])["steps"]
    assert row["phase"] == "succeeded"
    assert {n: (s["phase"], s["attempt"]) for n, s in steps.items()} == {
        "ingest": ("succeeded", 1),
        "publish": ("skipped", 0),
        "announce": ("skipped", 0),
        "audit": ("succeeded", 1),
    }
