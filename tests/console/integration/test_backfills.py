"""Backfills and expired join windows in the console: read model from the run topic, pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sous_contracts.backfills import (
    BackfillCounts,
    BackfillRange,
    BackfillRejected,
    BackfillStatus,
    BackfillUpdated,
    CancelBackfill,
    PartitionState,
    PartitionUpdate,
    RetryBackfill,
)
from sous_contracts.runs import JoinArrival, JoinWindowExpired
from sous_contracts.testing import sample_of
from sous_contracts.topics import ORDER_RUN_COMMANDS
from tests.console.integration.test_read_model import until
from tests.console.integration.test_web import signed_in
from tests.domain_registry.conftest import read_topic
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def update(
    backfill_id: uuid.UUID,
    at: int,
    status: BackfillStatus,
    counts: dict[str, int],
    partitions: list[PartitionUpdate],
) -> BackfillUpdated:
    """The scheduler's BackfillUpdated of sales/daily in dev, `at` seconds after T0."""
    return sample_of(
        BackfillUpdated,
        backfill_id=backfill_id,
        variation="dev",
        kitchen="dev",
        range=BackfillRange(param="day", start="2026-11-01", end="2026-11-03"),
        concurrency=1,
        status=status,
        counts=BackfillCounts(total=3, **counts),
        partitions=partitions,
        occurred_at=T0 + timedelta(seconds=at),
    )


def part(key: str, state: PartitionState, attempt: int, run: uuid.UUID | None, reason=None):
    return PartitionUpdate(key=key, state=state, attempt=attempt, order_run_id=run, reason=reason)


async def a_backfill(console, kafka_settings) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A backfill whose day 1 succeeded, day 2 failed then runs again, day 3 waits.

    Every message is sent twice, and an update older than the newest arrives last: the read
    model shows the newest state. A refused retry behind them is the barrier.
    """
    bf, runs = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    r, s, f = (
        PartitionState.RUNNING,
        PartitionState.SUCCEEDED,
        PartitionState.FAILED,
    )
    running = BackfillStatus.RUNNING
    stale = update(
        bf,
        3,
        running,
        {"done": 1, "failed": 1, "waiting": 1},
        [
            part("2026-11-02", f, 1, runs[1], "step load failed"),
        ],
    )
    messages = [
        update(bf, 0, running, {"waiting": 2, "running": 1}, [part("2026-11-01", r, 1, runs[0])]),
        update(
            bf,
            1,
            running,
            {"done": 1, "waiting": 1, "running": 1},
            [
                part("2026-11-01", s, 1, runs[0]),
                part("2026-11-02", r, 1, runs[1]),
            ],
        ),
        stale,
        update(
            bf,
            4,
            running,
            {"done": 1, "running": 1, "waiting": 1},
            [
                part("2026-11-02", r, 2, runs[2]),
            ],
        ),
    ]
    await send(kafka_settings, messages, copies=2)
    await send(kafka_settings, [stale.model_copy(update={"message_id": uuid.uuid4()})])
    refused = BackfillRejected(backfill_id=bf, command="RetryBackfill", reason="nothing failed")
    await send(kafka_settings, [refused])
    await until(
        console.pool,
        "SELECT true FROM backfills WHERE backfill_id = $1 AND refused IS NOT NULL",
        bf,
    )
    return bf, runs


async def test_read_model_folds_backfill_updates_once_and_in_order(console, kafka_settings) -> None:
    bf, runs = await a_backfill(console, kafka_settings)
    row = await console.pool.fetchrow("SELECT * FROM backfills WHERE backfill_id = $1", bf)
    assert (row["status"], row["total"], row["done"], row["failed"]) == ("running", 3, 1, 0)
    assert (row["running"], row["waiting"], row["principal"]) == (1, 1, "alice")
    assert row["range"] == "day=2026-11-01..2026-11-03"
    assert row["refused"] == "RetryBackfill refused: nothing failed"
    parts = await console.pool.fetch(
        "SELECT key, state, attempt, order_run_id FROM backfill_partitions"
        " WHERE backfill_id = $1 ORDER BY key",
        bf,
    )
    assert [tuple(p) for p in parts] == [
        ("2026-11-01", "succeeded", 1, runs[0]),
        ("2026-11-02", "running", 2, runs[2]),  # the stale failure of attempt 1 stays behind
    ]


async def test_pages_show_progress_and_only_operators_act(console, kafka_settings) -> None:
    bf, runs = await a_backfill(console, kafka_settings)
    async with signed_in(console, {"*": ["read"]}) as (client, token):
        listing = await client.get("/backfills")
        assert listing.status_code == 200
        assert f'id="backfill-{bf}"' in listing.text
        assert "sales/daily" in listing.text
        assert "day=2026-11-01..2026-11-03" in listing.text
        assert '<span class="done">1</span>' in listing.text
        page = await client.get(f"/backfills/{bf}")
        assert page.status_code == 200
        assert 'id="partition-2026-11-02"' in page.text
        assert f'href="/runs/{runs[2]}"' in page.text
        assert 'id="backfill-cancel"' not in page.text
        assert 'id="backfill-retry"' not in page.text
        assert token not in page.text
        for action in ("cancel", "retry-failed"):
            forged = await client.post(f"/backfills/{bf}/{action}")
            assert forged.status_code == 403, action
            assert "lacks scope 'run'" in forged.json()["detail"]
        state = (await client.get(f"/backfills/{bf}/state")).json()
        assert state["counts"]["done"] == 1
        assert [p["key"] for p in state["partitions"]] == ["2026-11-01", "2026-11-02"]
    async with signed_in(console, {"finance": ["read", "run"]}) as (client, _):
        assert f'id="backfill-{bf}"' not in (await client.get("/backfills")).text
        assert (await client.get(f"/backfills/{bf}")).status_code == 403
    # The registry acts on backfills of its own read model: wait until it knows this one.
    async with asyncio.timeout(20):
        while (await console.registry.client.get(f"/v1/backfills/{bf}")).status_code != 200:
            await asyncio.sleep(0.05)
    async with signed_in(console, {"sales": ["read", "run"]}) as (client, _):
        page = await client.get(f"/backfills/{bf}")
        assert 'id="backfill-cancel"' in page.text
        for action in ("retry-failed", "cancel"):
            r = await client.post(f"/backfills/{bf}/{action}")
            assert r.status_code == 303, r.text
            assert r.headers["location"] == f"/backfills/{bf}"
        cross = await client.post(
            f"/backfills/{bf}/cancel", headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403
    commands = await read_topic(
        kafka_settings,
        ORDER_RUN_COMMANDS.full_name(kafka_settings.topic_prefix),
        until=lambda ms: any(isinstance(m, CancelBackfill) for m in ms),
    )
    (retry,) = [m for m in commands if isinstance(m, RetryBackfill)]
    (cancel,) = [m for m in commands if isinstance(m, CancelBackfill)]
    assert (retry.backfill_id, retry.principal) == (bf, cancel.principal)
    assert cancel.backfill_id == bf
    assert cancel.reason == f"cancelled by {cancel.principal}"


async def test_a_rejected_backfill_is_listed_with_its_reason(console, kafka_settings) -> None:
    bf = uuid.uuid4()
    await send(
        kafka_settings,
        [
            # Now, not the sample's date: a rejected backfill older than its retention is
            # purged by the console's first retention round, which may come after the insert.
            sample_of(
                BackfillRejected,
                backfill_id=bf,
                reason="unknown variation 'nope'",
                occurred_at=datetime.now(UTC),
            )
        ],
        copies=2,
    )
    await until(console.pool, "SELECT true FROM backfills WHERE backfill_id = $1", bf)
    async with signed_in(console, {"*": ["read"]}) as (client, _):
        page = await client.get(f"/backfills/{bf}")
        assert "rejected" in page.text
        assert "unknown variation &#39;nope&#39;" in page.text


async def test_an_expired_join_window_shows_in_runs_with_what_arrived(
    console, kafka_settings
) -> None:
    expiry, sales_run = uuid.uuid4(), uuid.uuid4()
    expired = sample_of(
        JoinWindowExpired,
        order_run_id=expiry,
        kitchen="dev",
        upstreams=[
            JoinArrival(domain="sales", recipe="daily", arrived=True, order_run_id=sales_run),
            JoinArrival(domain="payments", recipe="settle"),
        ],
        opened_at=T0,
        deadline=T0 + timedelta(hours=6),
        occurred_at=datetime.now(UTC),  # its end, as of now: older, retention may purge it
    )
    await send(kafka_settings, [expired], copies=2)
    await until(console.pool, "SELECT true FROM runs WHERE order_run_id = $1", expiry)
    async with signed_in(console, {"*": ["read", "run"]}) as (client, _):
        runs = await client.get("/runs", params={"status": "join-expired"})
        assert f'id="run-{expiry}"' in runs.text
        assert "missing payments/settle" in runs.text
        page = await client.get(f"/runs/{expiry}")
        assert 'data-kind="join-expired"' in page.text
        assert f'href="/runs/{sales_run}"' in page.text
        assert "payments/settle: <strong>did not arrive</strong>" in page.text
        assert 'id="again"' not in page.text  # no run to repeat
