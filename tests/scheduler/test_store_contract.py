"""The fake store keeps the PostgreSQL adapter's promises: the same checks run on both.

The memory variant runs in the unit tier; the PostgreSQL one (marked `postgres`) on a fresh
schema of the real server, with the scheduler's migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sous_common import outbox
from sous_common.migrate import common_migrations, load
from sous_contracts.envelope import Envelope
from sous_contracts.registry import EntityKind, RegistryEntityChanged
from sous_contracts.runs import CancelOrderRun
from sous_contracts.specs import RecipeSpec
from sous_scheduler.adapters import postgres
from sous_scheduler.domain.events import ClearTimer, SetTimer
from sous_scheduler.domain.state import RunPhase, RunState
from sous_scheduler.domain.triggers import Arrival, JoinWindow
from tests.conftest import migrated_pool
from tests.scheduler.fakes import MemoryHost, MemoryStore, Tables

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RECIPE = RecipeSpec.model_validate({"recipe": "r", "steps": {"x": {"run": {"kind": "noop"}}}})


@dataclass
class Pair:
    """A store, transactions on it, its outbox and what the outbox holds in order."""

    store: Any
    transaction: Callable[[], AbstractAsyncContextManager[Any]]
    emit: Callable[[Any, list[Envelope]], Awaitable[int]]
    queued: Callable[[], Awaitable[list[uuid.UUID]]]
    at_once: Callable[[], AbstractAsyncContextManager[Any]]


def scheduler_pool(db_settings: Any, schema: str) -> AbstractAsyncContextManager[asyncpg.Pool]:
    """A pool on a fresh schema with the scheduler's migrations; the schema goes after."""
    return migrated_pool(
        db_settings, schema, common_migrations() + load("scheduler", "sous_scheduler.migrations")
    )


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        host = MemoryHost(Tables())

        async def in_memory_outbox() -> list[uuid.UUID]:
            return [m.message_id for m in host.tables.outbox]

        yield Pair(MemoryStore(), host.transaction, host.emit, in_memory_outbox, host.at_once)
        return
    db_settings, schema = request.getfixturevalue("db_settings"), request.getfixturevalue("schema")
    async with scheduler_pool(db_settings, schema) as pool:

        @contextlib.asynccontextmanager
        async def in_postgres() -> AsyncIterator[Any]:
            async with pool.acquire() as c, c.transaction():
                yield c

        async def emit(tx: Any, messages: list[Envelope]) -> int:
            return await outbox.add(tx, messages, schema=schema)

        async def postgres_outbox() -> list[uuid.UUID]:
            return [
                r["message_id"]
                for r in await pool.fetch("SELECT message_id FROM outbox ORDER BY id")
            ]

        yield Pair(
            postgres, in_postgres, emit, postgres_outbox, lambda: outbox.at_once(pool, schema)
        )


def run(kitchen: str = "prod", variation: str = "prod", **kw: Any) -> RunState:
    return RunState(
        order_run_id=uuid.uuid4(),
        domain="a",
        recipe="r",
        variation=variation,
        kitchen=kitchen,
        **kw,
    )


async def _saved_elsewhere(store: Any, tx: Any, state: RunState) -> None:
    """Save a run as another replica would: past this process's cache."""
    if store is postgres:
        await tx.execute(
            "UPDATE runs SET phase = $2, state = $3::jsonb WHERE id = $1",
            state.order_run_id,
            state.phase.value,
            state.model_dump_json(),
        )
    else:
        tx.runs[state.order_run_id] = dataclasses.replace(tx.runs[state.order_run_id], state=state)


async def test_the_inbox_takes_each_message_once_per_consumer(pair: Pair) -> None:
    s, m, other = pair.store, uuid.uuid4(), uuid.uuid4()
    async with pair.transaction() as tx:
        assert await s.claim(tx, "c", m)
        assert not await s.claim(tx, "c", m)
    async with pair.transaction() as tx:
        assert not await s.claim(tx, "c", m)
        assert await s.claim(tx, "d", m), "another consumer's inbox is its own"
        assert await s.claim_many(tx, "c", [m, other, other]) == {other}


async def test_claim_and_lock_takes_new_messages_and_returns_only_their_runs(pair: Pair) -> None:
    s, one, two = pair.store, run(), run()
    seen, new, mark, ghost = (uuid.uuid4() for _ in range(4))
    async with pair.transaction() as tx:
        await s.insert_run(tx, one, RECIPE, None)
        await s.insert_run(tx, two, RECIPE, None)
        assert await s.claim(tx, "c", seen)
    async with pair.transaction() as tx:
        fresh, runs = await s.claim_and_lock(
            tx,
            "c",
            [
                (seen, one.order_run_id),  # handled before: its run is not taken
                (new, two.order_run_id),
                (new, two.order_run_id),  # a repeat within the batch
                (mark, None),  # a message of no run
                (ghost, uuid.uuid4()),  # a run this store does not know
            ],
        )
        assert fresh == {new, mark, ghost}
        assert set(runs) == {two.order_run_id}
        assert runs[two.order_run_id][0] == two
    async with pair.transaction() as tx:
        fresh, runs = await s.claim_and_lock(tx, "c", [(new, two.order_run_id)])
        assert (fresh, runs) == (set(), {})


async def test_a_failed_transaction_leaves_nothing(pair: Pair) -> None:
    s, m, state = pair.store, uuid.uuid4(), run()
    with pytest.raises(RuntimeError):
        async with pair.transaction() as tx:
            await s.claim(tx, "c", m)
            await s.insert_run(tx, state, RECIPE, "k")
            raise RuntimeError("boom")
    async with pair.transaction() as tx:
        assert await s.claim(tx, "c", m)
        assert await s.run_for_update(tx, state.order_run_id) is None


async def test_the_outbox_keeps_order_and_drops_what_rolled_back(pair: Pair) -> None:
    m1, m2, lost, m3 = (CancelOrderRun(order_run_id=uuid.uuid4()) for _ in range(4))
    async with pair.transaction() as tx:
        assert await pair.emit(tx, [m1, m2]) == 2
    with pytest.raises(RuntimeError):
        async with pair.transaction() as tx:
            await pair.emit(tx, [lost])
            raise RuntimeError("boom")
    async with pair.transaction() as tx:
        await pair.emit(tx, [m3])
    assert await pair.queued() == [m1.message_id, m2.message_id, m3.message_id]


async def test_a_trigger_answers_each_upstream_message_once(pair: Pair) -> None:
    s, upstream = pair.store, uuid.uuid4()
    async with pair.transaction() as tx:
        assert await s.record_firing(tx, "b/f#0", upstream, uuid.uuid4(), "started")
        await s.refuse_firing(tx, "b/f#0", upstream, "params")
    async with pair.transaction() as tx:
        assert not await s.record_firing(tx, "b/f#0", upstream, uuid.uuid4(), "started")
        assert await s.record_firing(tx, "b/f#1", upstream, uuid.uuid4(), "started")


async def test_run_once_keys_hold_per_domain_recipe_and_kitchen(pair: Pair) -> None:
    s, first = pair.store, run()
    async with pair.transaction() as tx:
        assert await s.insert_run(tx, first, RECIPE, "k")
        assert not await s.insert_run(tx, first, RECIPE, None), "the same id"
        assert not await s.insert_run(tx, run(), RECIPE, "k")
        assert await s.insert_run(tx, run(kitchen="dev"), RECIPE, "k")
        assert await s.insert_run(tx, run(), RECIPE, None)
        assert await s.insert_run(tx, run(), RECIPE, None), "no key, no limit"
        assert await s.run_of_key(tx, "a", "r", "prod", "k") == (first.order_run_id, "queued")
        assert await s.run_of_key(tx, "a", "r", "prod", "other") is None


async def test_runs_are_saved_and_listed_oldest_first_per_variation_and_phase(pair: Pair) -> None:
    s = pair.store
    one, two, elsewhere = run(), run(), run(variation="canary")
    async with pair.transaction() as tx:
        for state in (one, two, elsewhere):
            await s.insert_run(tx, state, RECIPE, None)
    async with pair.transaction() as tx:
        running = one.model_copy(update={"phase": RunPhase.RUNNING})
        await s.save_runs(tx, [running])
        loaded = await s.run_for_update(tx, one.order_run_id)
        assert loaded is not None
        assert loaded[0] == running
        assert loaded[1] == RECIPE
        assert await s.oldest_open_runs(tx, "a", "r", "prod", "running", 5) == [one.order_run_id]
        assert await s.oldest_open_runs(tx, "a", "r", "prod", "queued", 5) == [two.order_run_id]
        assert await s.count_open_runs(tx, "a", "r", "prod", None) == (1, 1)
        assert await s.count_open_runs(tx, "a", "r", "prod", two.order_run_id) == (1, 0)
        assert await s.count_open_runs(tx, "a", "r", "canary", None) == (0, 1)
        assert await s.oldest_open_runs(tx, "a", "r", "prod", "queued", 5, two.order_run_id) == []
        assert await s.oldest_open_runs(tx, "a", "r", "prod", "queued", 0) == []
    more = [run() for _ in range(3)]
    for state in more:  # one transaction each: created one after the other
        async with pair.transaction() as tx:
            await s.insert_run(tx, state, RECIPE, None)
    async with pair.transaction() as tx:
        assert await s.oldest_open_runs(tx, "a", "r", "prod", "queued", 2) == [
            two.order_run_id,
            more[0].order_run_id,
        ]
        found = await s.runs_for_update(tx, [two.order_run_id, uuid.uuid4(), one.order_run_id])
        assert set(found) == {one.order_run_id, two.order_run_id}


async def test_admission_locks_are_taken_and_their_variations_counted_at_once(pair: Pair) -> None:
    s = pair.store
    running = run().model_copy(update={"phase": RunPhase.RUNNING})
    queued, canary = run(), run(variation="canary")
    async with pair.transaction() as tx:
        for state in (running, queued, canary):
            await s.insert_run(tx, state, RECIPE, None)
    both = [("a", "r", "canary"), ("a", "r", "prod")]
    async with pair.transaction() as tx:
        assert await s.lock_and_count(tx, ["canary", "prod"], both, [None, None]) == [
            (0, 1),
            (1, 1),
        ]
        assert await s.lock_and_count(tx, ["prod"], both[1:], [queued.order_run_id]) == [(1, 0)]
        assert await s.lock_and_count(tx, [], [], []) == []


@pytest.mark.postgres
async def test_an_admission_counts_what_the_one_before_it_wrote_under_the_lock(
    db_settings: Any, schema: str
) -> None:
    """The count is made once the lock is held, on what the lock's last holder committed."""
    prod = [("a", "r", "prod")]
    async with scheduler_pool(db_settings, schema) as pool:

        async def second() -> list[tuple[int, int]]:
            async with pool.acquire() as c, c.transaction():
                return await postgres.lock_and_count(c, ["prod"], prod, [None])

        async with pool.acquire() as first, first.transaction():
            assert await postgres.lock_and_count(first, ["prod"], prod, [None]) == [(0, 0)]
            waiting = asyncio.create_task(second())
            while not await pool.fetchval(  # the second admission waits for the lock
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ):
                assert not waiting.done(), await waiting
                await asyncio.sleep(0.01)
            admitted = run().model_copy(update={"phase": RunPhase.RUNNING})
            await postgres.insert_run(first, admitted, RECIPE, None)
        assert await asyncio.wait_for(waiting, 10) == [(1, 0)]


@pytest.mark.postgres
async def test_a_scheduler_on_another_schema_never_waits_for_these_locks(
    db_settings: Any, schema: str
) -> None:
    """Advisory locks are the whole database's; a lock name is one schema's own."""
    prod = [("a", "r", "prod")]
    async with (
        scheduler_pool(db_settings, schema) as here,
        scheduler_pool(db_settings, f"{schema}_other") as other,
        here.acquire() as holder,
        holder.transaction(),
    ):
        await postgres.lock_and_count(holder, ["a/r/prod"], prod, [None])
        await postgres.lock(holder, "join:t:prod:k")
        async with other.acquire() as c, c.transaction(), asyncio.timeout(5):
            # a wait here is a lock shared across schemas
            assert await postgres.lock_and_count(c, ["a/r/prod"], prod, [None]) == [(0, 0)]
            await postgres.lock(c, "join:t:prod:k")


async def test_the_registry_view_moves_a_generation_on_with_every_change(pair: Pair) -> None:
    s = pair.store
    change = RegistryEntityChanged(
        entity_id="kitchen:prod",
        kind=EntityKind.KITCHEN,
        name="prod",
        version="v1",
        spec={"kitchen": "prod"},
    )
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with pair.transaction() as tx:
        before = await s.registry_generation(tx)
        fresh, seen = await s.claim_and_look(tx, "c", [ids[0], ids[0]])
        assert (fresh, seen) == ({ids[0]}, before)
        await s.upsert_entity(tx, change)
        await s.upsert_entity(tx, change.model_copy(update={"version": "v2"}))
        fresh, seen = await s.claim_and_look(tx, "c", ids)
        assert fresh == {ids[1]}, "claimed once"
        assert seen == await s.registry_generation(tx) == before + 2


async def test_saving_runs_sets_and_clears_their_timers_at_once(pair: Pair) -> None:
    s, one, two = pair.store, run(), run()
    async with pair.transaction() as tx:
        for state in (one, two):
            await s.insert_run(tx, state, RECIPE, None)
        await s.apply_timers(tx, one.order_run_id, [SetTimer("retry", "x", 1, T0)])
    async with pair.transaction() as tx:
        running = one.model_copy(update={"phase": RunPhase.RUNNING})
        await s.save_runs(
            tx,
            [running],
            {
                one.order_run_id: [
                    ClearTimer("retry", "x"),
                    SetTimer("step_timeout", "x", 1, T0),
                    SetTimer("step_timeout", "x", 2, T0 + timedelta(seconds=1)),
                ],
                two.order_run_id: [SetTimer("retry", "y", 3, T0), ClearTimer("retry", "y")],
            },
        )
        loaded = await s.run_for_update(tx, one.order_run_id)
        assert loaded is not None
        assert loaded[0] == running
    async with pair.transaction() as tx:
        later = T0 + timedelta(hours=1)
        assert await s.timers_due(tx, T0) == 0, "the step timeout is due a second later"
        assert await s.timers_due(tx, later) == 1
        assert await s.claim_due_timer(tx, later) == (one.order_run_id, "step_timeout", "x", 2)
        assert await s.claim_due_timer(tx, later) is None, "the retry was cleared, y never set"
    async with pair.transaction() as tx:  # timers alone, and timers written at COMMIT
        await s.save_runs(tx, [], {two.order_run_id: [SetTimer("retry", "z", 1, T0)]})
        await s.apply_timers(tx, one.order_run_id, [SetTimer("retry", "q", 4, T0)])
        await s.apply_timers_at_commit(
            tx,
            {
                one.order_run_id: [ClearTimer("retry", "q")],
                two.order_run_id: [SetTimer("lease", "z", 5, later)],
            },
        )
    async with pair.transaction() as tx:
        assert await s.claim_due_timer(tx, later) == (two.order_run_id, "retry", "z", 1)
        assert await s.claim_due_timer(tx, later + (later - T0)) is None, "the lease waits"
        await s.expect_marks(tx, {0})
        await s.save_marks(tx, {0: later})
        assert await s.claim_due_timer(tx, later) == (two.order_run_id, "lease", "z", 5)


async def test_timers_last_change_wins_and_leases_wait_for_the_read_marks(pair: Pair) -> None:
    s, state = pair.store, run()
    async with pair.transaction() as tx:
        await s.insert_run(tx, state, RECIPE, None)
        await s.apply_timers(
            tx,
            state.order_run_id,
            [
                SetTimer("lease", "x", 1, T0),
                SetTimer("lease", "x", 2, T0 + timedelta(seconds=10)),
                SetTimer("step_timeout", "x", 1, T0),
                ClearTimer("step_timeout", "x"),
                SetTimer("retry", "x", 1, T0 + timedelta(seconds=5)),
            ],
        )
        await s.expect_marks(tx, {0, 1})
    async with pair.transaction() as tx:
        later = T0 + timedelta(hours=1)
        assert await s.claim_due_timer(tx, T0) is None
        assert await s.claim_due_timer(tx, later) == (state.order_run_id, "retry", "x", 1)
        assert await s.claim_due_timer(tx, later) is None, "the lease waits for every partition"
        assert await s.save_marks(tx, {0: later}) == {}, "nothing read before"
        before = await s.save_marks(tx, {1: T0 + timedelta(seconds=10), 0: T0})
        assert before == {0: later}, "0 never goes back"
        after = T0 + timedelta(hours=3)
        assert await s.extend_leases(tx, T0 + timedelta(seconds=10), after) == 0, "due before"
        assert await s.extend_leases(tx, T0, after) == 1
        assert await s.extend_leases(tx, T0, after) == 0, "moved once"
        assert await s.claim_due_timer(tx, later) is None, "moved past the marks"
        await s.save_marks(tx, {0: T0 + timedelta(hours=3), 1: T0 + timedelta(hours=3)})
        assert await s.claim_due_timer(tx, T0 + timedelta(hours=3)) == (
            state.order_run_id,
            "lease",
            "x",
            2,
        )
        assert await s.claim_due_timer(tx, later) is None


async def test_a_run_a_newer_replica_saved_with_new_fields_loads(pair: Pair) -> None:
    if pair.store is not postgres:
        pytest.skip("the fake keeps states as objects: only stored text can hold new fields")
    state = run(phase=RunPhase.RUNNING)
    async with pair.transaction() as tx:
        await pair.store.insert_run(tx, state, RECIPE, None)
        await tx.execute(
            "UPDATE runs SET state = state || '{\"priority\": 5}' WHERE id = $1",
            state.order_run_id,
        )
    async with pair.transaction() as tx:
        loaded = await pair.store.run_for_update(tx, state.order_run_id)
        assert loaded is not None
        assert loaded[0] == state
        assert (await pair.store.runs_for_update(tx, [state.order_run_id]))[state.order_run_id][
            0
        ] == state


async def test_join_windows_round_trip_and_expire_once(pair: Pair) -> None:
    s, m = pair.store, uuid.uuid4()
    window = JoinWindow(uuid.uuid4(), T0, T0 + timedelta(minutes=5), {0: Arrival(m, None)})
    async with pair.transaction() as tx:
        await s.save_join_window(tx, "t", "prod", "d1", window)
        assert await s.join_window(tx, "t", "prod", "d1") == window
        assert await s.join_window(tx, "t", "prod", "d2") is None
        assert await s.claim_expired_window(tx, T0) is None
        expired = await s.claim_expired_window(tx, T0 + timedelta(minutes=5))
        assert expired == ("t", "prod", "d1", window)
        assert await s.claim_expired_window(tx, T0 + timedelta(minutes=5)) is None


async def test_a_cron_fire_time_starts_one_run(pair: Pair) -> None:
    s, hour = pair.store, timedelta(hours=1)
    async with pair.transaction() as tx:
        assert await s.last_fire(tx, "sch") is None
        assert await s.record_fires(tx, "sch", [T0, T0 + hour])
        assert not await s.record_fires(tx, "sch", [T0 + hour])
        assert await s.claim_fire(tx, "sch", T0 + 2 * hour, uuid.uuid4())
        assert not await s.claim_fire(tx, "sch", T0 + 2 * hour, uuid.uuid4())
        assert await s.last_fire(tx, "sch") == T0 + 2 * hour


async def test_a_run_loads_as_last_written_whoever_wrote_it(pair: Pair) -> None:
    """What another replica saved, or a save that rolled back, is what a load sees."""
    s, state = pair.store, run()
    async with pair.transaction() as tx:
        await s.insert_run(tx, state, RECIPE, None)
    running = state.model_copy(update={"phase": RunPhase.RUNNING})
    with pytest.raises(RuntimeError):
        async with pair.transaction() as tx:
            await s.save_runs(tx, [running])
            raise RuntimeError("rolled back")
    async with pair.transaction() as tx:
        assert await s.run_for_update(tx, state.order_run_id) == (state, RECIPE)
        await s.save_run(tx, running)
    # Another replica's save, from a process whose cache this one never sees.
    failed = running.model_copy(update={"phase": RunPhase.FAILED, "reason": "elsewhere"})
    async with pair.transaction() as tx:
        await _saved_elsewhere(s, tx, failed)
    async with pair.transaction() as tx:
        assert await s.run_for_update(tx, state.order_run_id) == (failed, RECIPE)
        found = await s.runs_for_update(tx, [state.order_run_id])
        assert found == {state.order_run_id: (failed, RECIPE)}


async def test_runs_written_at_once_land_only_as_they_were_known(pair: Pair) -> None:
    """One statement claims, saves and sets timers, or, when a run changed since it was
    known here or a message was seen before, writes none of it."""
    s, one, two = pair.store, run(), run()
    ids = [one.order_run_id, two.order_run_id]
    async with pair.transaction() as tx:
        for state in (one, two):
            await s.insert_run(tx, state, RECIPE, None)
    async with pair.transaction() as tx:
        assert await s.runs_for_update(tx, ids) == {
            one.order_run_id: (one, RECIPE),
            two.order_run_id: (two, RECIPE),
        }
    known = s.cached_runs(ids)
    assert {i: (st, r) for i, (_, st, r) in known.items()} == {
        one.order_run_id: (one, RECIPE),
        two.order_run_id: (two, RECIPE),
    }
    first, second = uuid.uuid4(), uuid.uuid4()
    running = [st.model_copy(update={"phase": RunPhase.RUNNING}) for st in (one, two)]
    async with pair.at_once() as tx:
        await s.claim_all(tx, "c", [first])
        await s.save_runs_as_of(
            tx,
            [(known[st.order_run_id][0], st) for st in running],
            {one.order_run_id: [SetTimer("retry", "x", 1, T0)]},
        )
    now_known = s.cached_runs(ids)
    assert [now_known[i][1] for i in ids] == running, "what was written is known at its version"
    # Another replica moves `two` on, from a process whose cache this one never sees.
    failed = running[1].model_copy(update={"phase": RunPhase.FAILED, "reason": "elsewhere"})
    async with pair.transaction() as tx:
        await _saved_elsewhere(s, tx, failed)
    succeeded = [st.model_copy(update={"phase": RunPhase.SUCCEEDED}) for st in running]
    with pytest.raises(outbox.Conflict):
        async with pair.at_once() as tx:
            await s.claim_all(tx, "c", [second])
            await s.save_runs_as_of(
                tx,
                [(now_known[st.order_run_id][0], st) for st in succeeded],
                {one.order_run_id: [ClearTimer("retry", "x")]},
            )
    with pytest.raises(outbox.Conflict):  # the runs as known, but a message seen before
        async with pair.at_once() as tx:
            await s.claim_all(tx, "c", [second, first])
            await s.save_runs_as_of(tx, [(now_known[one.order_run_id][0], succeeded[0])], {})
    async with pair.transaction() as tx:
        assert await s.run_for_update(tx, one.order_run_id) == (running[0], RECIPE)
        assert await s.run_for_update(tx, two.order_run_id) == (failed, RECIPE)
        assert await s.claim_due_timer(tx, T0) == (one.order_run_id, "retry", "x", 1)
        assert await s.claim(tx, "c", second), "the undone statements claimed nothing"
        assert not await s.claim(tx, "c", first)
    # The version the first statement wrote is the one known here: the next one lands.
    [(version, known_state, _)] = s.cached_runs([one.order_run_id]).values()
    assert known_state == running[0]
    async with pair.at_once() as tx:
        await s.claim_all(tx, "c", [uuid.uuid4()])
        await s.save_runs_as_of(tx, [(version, succeeded[0])], {})
    async with pair.transaction() as tx:
        assert await s.run_for_update(tx, one.order_run_id) == (succeeded[0], RECIPE)
