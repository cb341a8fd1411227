"""A finished attempt stops beating once its replica's relay has put StepFinished on the broker.

The relay says so itself: the attempt does not need the database to know (one query per
step less), so even with the database away nothing beats for a step that ended.
"""

from __future__ import annotations

import pytest

from sous_common import outbox
from sous_contracts.steps import StepHeartbeat
from tests.executor.conftest import execute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

INTERVAL = 0.2


async def test_a_relayed_finish_ends_the_heartbeats_without_asking_the_database(
    harness, executor, monkeypatch
) -> None:
    async def database_away(*_: object) -> bool:
        raise OSError("database away")  # what a lookup of the outbox meets in an outage

    monkeypatch.setattr(outbox, "pending", database_away)
    done = execute("noop", heartbeat_interval_s=INTERVAL)
    await harness.run(done)
    # The barrier: an attempt that keeps running beats five times at the same interval,
    # so the finished one had five chances to beat too.
    barrier = execute("shell", {"argv": ["sleep", "30"]}, heartbeat_interval_s=INTERVAL)
    await harness.send(barrier)
    await harness.wait_for(lambda: len(harness.of(barrier.step_run_id, StepHeartbeat)) >= 5)
    assert harness.of(done.step_run_id, StepHeartbeat) == []
