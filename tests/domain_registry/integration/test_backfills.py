"""REST of backfills: start (400 for bad ranges), the read model fed from Kafka, cancel, retry."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_contracts.backfills import (
    BackfillCounts,
    BackfillRange,
    BackfillStatus,
    BackfillUpdated,
    CancelBackfill,
    PartitionState,
    PartitionUpdate,
    RetryBackfill,
    StartBackfill,
)
from sous_contracts.topics import ORDER_RUN_COMMANDS
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files
from tests.domain_registry.run_events import produce
from tests.signing import SCHEDULER

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

WEEK = {"param": "day", "start": "2026-11-01", "end": "2026-11-07"}


def body(**changes) -> dict:
    return {"domain": "sales", "recipe": "daily", "variation": "prod", "range": WEEK} | changes


@pytest.mark.parametrize(
    ("range_", "words"),
    [
        ({**WEEK, "end": "2026-10-01"}, "range day=2026-11-01..2026-10-01: the end is before"),
        ({**WEEK, "step": "1h"}, "step '1h' is not a date step (like 1d, 7d or 2w)"),
        ({**WEEK, "end": "2026-11-31"}, "end '2026-11-31' is neither an ISO date nor an integer"),
        ({**WEEK, "end": "30"}, "start and end must both be dates or both be integers"),
        ({"param": "n", "start": "1", "end": "20000"}, "20000 partitions, more than the limit"),
    ],
)
async def test_bad_ranges_are_refused_with_400(registry, range_, words) -> None:
    assert (
        await registry.client.post("/v1/apply", json={"files": mesh_files()})
    ).status_code == 200
    r = await registry.client.post("/v1/backfills", json=body(range=range_))
    assert r.status_code == 400, r.text
    assert words in r.json()["detail"]


async def test_start_follow_cancel_and_retry(registry) -> None:
    client = registry.client
    assert (await client.post("/v1/apply", json={"files": mesh_files()})).status_code == 200
    missing = await client.post("/v1/backfills", json=body(recipe="nope"))
    assert missing.status_code == 404
    assert "unknown recipe 'sales/nope'" in missing.json()["detail"]
    r = await client.post("/v1/backfills", json=body(concurrency=3))
    assert r.status_code == 202, r.text
    backfill_id, count = uuid.UUID(r.json()["backfill_id"]), r.json()["partitions"]
    assert count == 7
    topic = ORDER_RUN_COMMANDS.full_name(registry.settings.kafka.topic_prefix)
    got = await read_topic(
        registry.settings.kafka,
        topic,
        until=lambda ms: any(isinstance(m, StartBackfill) for m in ms),
    )
    command = next(m for m in got if isinstance(m, StartBackfill))
    assert (command.backfill_id, command.concurrency, command.principal) == (
        backfill_id,
        3,
        "admin",
    )
    assert (await client.get(f"/v1/backfills/{backfill_id}")).json()["status"] == "requested"

    # The scheduler's answer, as it would publish it.
    run = uuid.uuid4()
    update = BackfillUpdated(
        backfill_id=backfill_id,
        domain="sales",
        recipe="daily",
        variation="prod",
        kitchen="prod",
        range=BackfillRange(**WEEK),
        concurrency=3,
        status=BackfillStatus.FAILED,
        counts=BackfillCounts(total=7, done=6, failed=1),
        partitions=[
            PartitionUpdate(
                key="2026-11-03", state=PartitionState.FAILED, order_run_id=run, attempt=1
            )
        ],
    )
    await produce(registry.settings.kafka, [update, update], signer=SCHEDULER)
    async with asyncio.timeout(20):
        while (found := (await client.get(f"/v1/backfills/{backfill_id}")).json())[
            "status"
        ] != "failed":
            await asyncio.sleep(0.05)
    assert found["counts"]["failed"] == 1
    assert found["partitions"] == [
        {
            "key": "2026-11-03",
            "state": "failed",
            "order_run_id": str(run),
            "attempt": 1,
            "reason": None,
        }
    ]
    listed = (await client.get("/v1/backfills", params={"domain": "sales"})).json()
    assert [b["backfill_id"] for b in listed] == [str(backfill_id)]

    retry = await client.post(f"/v1/backfills/{backfill_id}/retry-failed")
    assert retry.status_code == 202, retry.text
    assert retry.json()["partitions"] == 1
    cancel = await client.post(f"/v1/backfills/{backfill_id}/cancel", json={"reason": "enough"})
    assert cancel.status_code == 202, cancel.text
    got = await read_topic(
        registry.settings.kafka,
        topic,
        until=lambda ms: any(isinstance(m, CancelBackfill) for m in ms),
    )
    retried = [m for m in got if isinstance(m, RetryBackfill)]
    cancelled = [m for m in got if isinstance(m, CancelBackfill)]
    assert [m.backfill_id for m in retried] == [backfill_id]
    assert [(m.backfill_id, m.reason) for m in cancelled] == [(backfill_id, "enough")]
    unknown = await client.post(f"/v1/backfills/{uuid.uuid4()}/cancel", json={})
    assert unknown.status_code == 404
    assert "unknown backfill" in unknown.json()["detail"]


async def test_backfills_need_the_run_scope(registry) -> None:
    assert (
        await registry.client.post("/v1/apply", json={"files": mesh_files()})
    ).status_code == 200
    reader = await registry.token("reader", {"sales": ["read"]})
    r = await registry.client.post("/v1/backfills", json=body(), headers=reader)
    assert r.status_code == 403
    assert r.json()["detail"] == "principal 'reader' lacks scope 'run' on domain 'sales'"
