"""The scheduler's use cases on the fake store: runs, dedup, triggers, joins, limits, timers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sous_contracts.backfills import (
    BackfillRange,
    BackfillRejected,
    BackfillUpdated,
    StartBackfill,
)
from sous_contracts.common import RunStatus, StepStatus, TestSummary
from sous_contracts.registry import EntityKind
from sous_contracts.runs import (
    CANCEL_REASON_MAX,
    IDEMPOTENCY_KEY_MAX,
    TRIGGER_KEY_MAX,
    CancelOrderRun,
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    TriggerHeld,
)
from sous_contracts.steps import ExecuteStep, StepEventsMark
from sous_contracts.tests import TestSuiteFinished
from sous_scheduler.domain.limits import RECIPE_REF_MAX
from sous_scheduler.schedules import Schedules
from tests.scheduler.integration.conftest import recipe
from tests.scheduler.standins import entity
from tests.scheduler.world import NOOP, T0, World, answers, start

CHAIN = recipe("a", "chain", {"one": NOOP, "two": {**NOOP, "needs": ["one"]}})

REVENUE = recipe(
    "finance",
    "revenue",
    {"load": NOOP},
    params={"day": {"required": True}},
    triggers=[
        {
            "name": "by-day",
            "all": [{"domain": "sales"}, {"domain": "payments"}],
            "key": "${event.params.day}",
            "within": "10m",
            "params": {"day": "${key}"},
            "variation": "prod",
        }
    ],
)


async def finish(world: World, cmd: ExecuteStep, status: StepStatus = StepStatus.SUCCEEDED) -> None:
    await world.scheduler.on_run_events(list(answers(cmd, status)))


async def test_a_run_dispatches_its_steps_in_order_and_ends_once() -> None:
    world = World()
    await world.apply(CHAIN)
    cmd = start("a", "chain")
    await world.scheduler.start(cmd)
    [one] = world.sent(ExecuteStep, cmd.order_run_id)
    assert one.step == "one"
    await finish(world, one)
    [_, two] = world.sent(ExecuteStep, cmd.order_run_id)
    assert two.step == "two"
    await finish(world, two)
    await finish(world, two)  # redelivered answers change nothing
    [done] = world.sent(OrderRunFinished, cmd.order_run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert len(world.sent(ExecuteStep)) == 2


async def test_a_duplicate_command_starts_nothing_twice() -> None:
    world = World()
    await world.apply(CHAIN)
    cmd = start("a", "chain")
    await world.scheduler.start(cmd)
    await world.scheduler.start(cmd)
    assert len(world.sent(OrderRunStarted)) == 1
    assert len(world.sent(ExecuteStep)) == 1


async def test_a_repeated_idempotency_key_answers_with_the_first_run() -> None:
    world = World()
    await world.apply(CHAIN)
    first, again = (
        start("a", "chain", idempotency_key="k1"),
        start("a", "chain", idempotency_key="k1"),
    )
    await world.scheduler.start(first)
    await world.scheduler.start(again)
    [dedup] = world.sent(OrderRunDeduplicated)
    assert dedup.order_run_id == again.order_run_id
    assert dedup.existing_order_run_id == first.order_run_id
    assert [s.order_run_id for s in world.sent(OrderRunStarted)] == [first.order_run_id]


async def test_a_completion_triggers_its_downstream_run_once_even_when_redelivered() -> None:
    world = World()
    follow = recipe(
        "b", "follow", {"x": NOOP}, triggers=[{"on": {"domain": "a"}, "variation": "prod"}]
    )
    await world.apply(CHAIN, follow)
    cmd = start("a", "chain")
    await world.scheduler.start(cmd)
    for _ in range(2):
        await finish(world, world.sent(ExecuteStep, cmd.order_run_id)[-1])
    [completed] = world.sent(DomainRunCompleted, cmd.order_run_id)
    await world.triggers.on_completed(completed)
    await world.triggers.on_completed(completed)
    # A second replica that saw it under another inbox still starts nothing twice.
    world.host.group_id = "another-consumer"
    await world.triggers.on_completed(completed)
    made = [*world.sent(OrderRunStarted), *world.sent(OrderRunQueued)]
    assert len({m.order_run_id for m in made if m.domain == "b"}) == 1


def _done(domain: str, day: str | None = None, recipe: str = "make") -> DomainRunCompleted:
    """A run of `domain/recipe` in prod that succeeded (for the given day)."""
    return DomainRunCompleted(
        domain=domain,
        recipe=recipe,
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        params={} if day is None else {"day": day},
    )


async def test_a_keyed_join_fires_once_per_key_when_both_sides_arrived() -> None:
    world = World()
    await world.apply(REVENUE)
    await world.triggers.on_completed(_done("sales", "d1"))
    await world.triggers.on_completed(_done("payments", "d2"))
    assert world.sent(OrderRunStarted) == []
    closing = _done("payments", "d1")
    await world.triggers.on_completed(closing)
    await world.triggers.on_completed(closing)
    [run] = world.sent(OrderRunStarted)
    assert run.params["day"] == "d1"


async def test_a_key_over_the_limit_is_refused_by_its_trigger_alone() -> None:
    world = World()
    audit = recipe(
        "ops", "audit", {"load": NOOP}, triggers=[{"on": {"domain": "sales"}, "variation": "prod"}]
    )
    await world.apply(REVENUE, audit)
    hostile = _done("sales", "x" * (TRIGGER_KEY_MAX + 1))
    batch = [_done("payments", "d1"), hostile, _done("sales", "d1")]
    await world.triggers.on_completed_many(batch)
    assert world.tables.firings[("finance/revenue#by-day", hostile.message_id)] == (
        None,
        "refused: key '${event.params.day}': resolves to 257 characters, longer than the"
        " limit of 256",
    )
    assert [k for _, _, k in world.tables.windows] == []
    runs = world.sent(OrderRunStarted)
    assert [r.params for r in runs if r.domain == "finance"] == [{"day": "d1"}]
    # The event's other trigger fires on it as on any other (the second run waits its turn).
    made = [*runs, *world.sent(OrderRunQueued)]
    assert len([r for r in made if r.domain == "ops"]) == 2


async def test_a_freed_slot_goes_to_exactly_one_queued_run() -> None:
    world = World()
    limited = recipe("a", "slow", {"one": NOOP}, concurrency={"limit": 1, "policy": "queue"})
    await world.apply(limited)
    first, second, third = start("a", "slow"), start("a", "slow"), start("a", "slow")
    for cmd in (first, second, third):
        await world.scheduler.start(cmd)
    assert [q.order_run_id for q in world.sent(OrderRunQueued)] == [
        second.order_run_id,
        third.order_run_id,
    ]
    await finish(world, world.sent(ExecuteStep, first.order_run_id)[0])
    started = [s.order_run_id for s in world.sent(OrderRunStarted)]
    assert started == [first.order_run_id, second.order_run_id]


async def test_queued_runs_wait_in_order_and_runs_ending_together_free_one_slot_each() -> None:
    world = World()
    limited = recipe("a", "slow", {"one": NOOP}, concurrency={"limit": 2, "policy": "queue"})
    await world.apply(limited)
    cmds = [start("a", "slow") for _ in range(6)]
    for cmd in cmds:
        await world.scheduler.start(cmd)
    assert [(q.order_run_id, q.position) for q in world.sent(OrderRunQueued)] == [
        (c.order_run_id, i) for i, c in enumerate(cmds[2:], start=1)
    ]
    while len(world.sent(OrderRunFinished)) < len(cmds):
        running = [s.order_run_id for s in world.sent(OrderRunStarted)]
        ended = {f.order_run_id for f in world.sent(OrderRunFinished)}
        assert len(set(running) - ended) == 2, "the limit is held while runs wait"
        # Both running runs end in one batch, as when they end together.
        steps = [world.sent(ExecuteStep, r)[0] for r in running if r not in ended]
        await world.scheduler.on_run_events([a for cmd in steps for a in answers(cmd)])
    assert [s.order_run_id for s in world.sent(OrderRunStarted)] == [c.order_run_id for c in cmds]


async def test_cancel_new_refuses_a_run_over_the_limit_and_starts_nothing() -> None:
    world = World()
    limited = recipe("a", "slow", {"one": NOOP}, concurrency={"limit": 1, "policy": "cancel-new"})
    await world.apply(limited)
    first, second = start("a", "slow"), start("a", "slow")
    await world.scheduler.start(first)
    await world.scheduler.start(second)
    [refused] = world.sent(OrderRunFinished, second.order_run_id)
    assert refused.status is RunStatus.CANCELLED
    assert refused.reason == "concurrency limit 1 reached for a/slow variation prod"
    assert [s.order_run_id for s in world.sent(OrderRunStarted)] == [first.order_run_id]
    assert world.sent(ExecuteStep, second.order_run_id) == []
    await finish(world, world.sent(ExecuteStep, first.order_run_id)[0])
    assert [s.order_run_id for s in world.sent(OrderRunStarted)] == [first.order_run_id]


async def test_cancel_running_cancels_the_oldest_run_and_starts_the_new_one() -> None:
    world = World()
    policy = {"limit": 1, "policy": "cancel-running"}
    await world.apply(recipe("a", "slow", {"one": NOOP}, concurrency=policy))
    first, second = start("a", "slow"), start("a", "slow")
    await world.scheduler.start(first)
    await world.scheduler.start(second)
    [pushed] = world.sent(OrderRunFinished, first.order_run_id)
    assert pushed.status is RunStatus.CANCELLED
    assert pushed.reason == f"cancelled: newer run {second.order_run_id}"
    [late] = world.sent(ExecuteStep, first.order_run_id)
    await finish(world, late)  # the cancelled run's late answer frees no second slot
    [step] = world.sent(ExecuteStep, second.order_run_id)
    await finish(world, step)
    [done] = world.sent(OrderRunFinished, second.order_run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert [s.order_run_id for s in world.sent(OrderRunStarted)] == [
        first.order_run_id,
        second.order_run_id,
    ]


async def test_cancel_ends_the_run_and_a_late_answer_changes_nothing() -> None:
    world = World()
    await world.apply(CHAIN)
    cmd = start("a", "chain")
    await world.scheduler.start(cmd)
    [one] = world.sent(ExecuteStep, cmd.order_run_id)
    await world.scheduler.cancel(CancelOrderRun(order_run_id=cmd.order_run_id, reason="stop"))
    await finish(world, one)
    [done] = world.sent(OrderRunFinished, cmd.order_run_id)
    assert done.status is RunStatus.CANCELLED
    assert len(world.sent(ExecuteStep)) == 1


async def test_a_lease_expires_only_once_the_step_events_are_read_past_it() -> None:
    world = World()
    retried = recipe("a", "r", {"one": {**NOOP, "retries": {"max": 1, "backoff": "1s"}}})
    await world.apply(retried)
    cmd = start("a", "r")
    await world.scheduler.start(cmd)
    [first] = world.sent(ExecuteStep, cmd.order_run_id)
    await world.scheduler.on_run_events([answers(first)[0]])  # started, then silence
    await world.scheduler.mark_step_events()
    world.later(3600)
    assert await world.scheduler.fire_due_timers() == 0, "no partition is read past the lease"
    mark = StepEventsMark(producer="scheduler", partition=0, occurred_at=world.now)
    await world.scheduler.on_run_events([mark])
    while await world.scheduler.fire_due_timers():  # lease, then the retry's backoff
        world.later(5)
    attempts = [e.attempt for e in world.sent(ExecuteStep, cmd.order_run_id)]
    assert attempts == [1, 2]


async def test_after_a_pause_in_the_read_marks_every_lease_gets_a_whole_lease_more() -> None:
    """Marks stopped for 30 s (the broker was away): executors could not heartbeat either."""
    world = World()
    retried = {"one": {**NOOP, "retries": {"max": 1, "backoff": "1s"}}}
    await world.apply(recipe("a", "r", retried), recipe("a", "s", retried))
    cmd, other = start("a", "r"), start("a", "s")
    for c in (cmd, other):
        await world.scheduler.start(c)
    [first] = world.sent(ExecuteStep, cmd.order_run_id)
    await world.scheduler.on_run_events([answers(first)[0]])  # started: a lease of 15 s
    await world.scheduler.mark_step_events()

    async def marked(seconds: float) -> int:
        """Move the clock on, read a mark of that time, fire what is due."""
        world.later(seconds)
        mark = StepEventsMark(producer="scheduler", partition=0, occurred_at=world.now)
        await world.scheduler.on_run_events([mark])
        return await world.scheduler.fire_due_timers()

    assert await marked(0) == await marked(1) == 0
    assert await marked(30) == 0, "the first mark after the pause: leases moved past it"
    fired = [await marked(1) for _ in range(25)]
    # A whole lease (20 s: the dispatch lease, the longer) after the pause, both expire.
    assert fired.index(2) == 19, fired
    assert [e.attempt for e in world.sent(ExecuteStep, cmd.order_run_id)] == [1, 2]
    assert [e.attempt for e in world.sent(ExecuteStep, other.order_run_id)] == [1, 2]


async def test_a_backfill_runs_at_most_its_concurrency_at_once() -> None:
    world = World()
    daily = recipe(
        "a", "daily", {"load": NOOP}, params={"day": {"required": True}}, concurrency={"limit": 50}
    )
    await world.apply(daily)
    cmd = StartBackfill(
        backfill_id=uuid.uuid4(),
        domain="a",
        recipe="daily",
        variation="prod",
        range=BackfillRange(param="day", start="2026-11-01", end="2026-11-05"),
        concurrency=2,
    )
    await world.backfills.handle(cmd)
    await world.backfills.handle(cmd)
    most = 0
    while (running := _running(world)) and len(world.sent(OrderRunFinished)) < 5:
        most = max(most, len(running))
        await finish(world, world.sent(ExecuteStep, running[0])[-1])
        ends = world.sent(OrderRunFinished, running[0])
        await world.backfills.on_run_ends(ends)
        await world.backfills.on_run_ends(ends)
    assert most == 2
    assert len(world.sent(OrderRunStarted)) == 5
    assert world.sent(BackfillUpdated)[-1].status.value == "succeeded"


def _running(world: World) -> list[uuid.UUID]:
    ended = {f.order_run_id for f in world.sent(OrderRunFinished)}
    return [s.order_run_id for s in world.sent(OrderRunStarted) if s.order_run_id not in ended]


async def test_a_cron_fire_time_starts_one_run_across_two_replicas() -> None:
    one = World()
    two = World(tables=one.tables)  # a second replica on the same tables
    every_hour = {"prod": {"kitchen": "prod", "schedule": "0 * * * *"}}
    await one.apply(recipe("a", "h", {"x": NOOP}, variations=every_hour))
    for hour in range(2):
        for world in (one, two):
            world.now = T0 + timedelta(hours=hour)  # on the fire time
            await Schedules(world.scheduler).tick()
        made = {m.order_run_id for m in [*one.sent(OrderRunStarted), *one.sent(OrderRunQueued)]}
        assert len(made) == hour + 1


async def test_a_keyed_window_that_ends_half_joined_is_published_once() -> None:
    world = World()
    await world.apply(REVENUE)
    await world.triggers.on_completed(_done("sales", "d1"))
    world.later(601)
    assert await world.triggers.expire_windows() == 1
    assert await world.triggers.expire_windows() == 0
    [expired] = world.sent(JoinWindowExpired)
    assert expired.key == "d1"
    assert world.sent(OrderRunStarted) == []


async def test_a_batch_after_a_registry_change_starts_the_new_version_of_a_recipe() -> None:
    world = World()
    await world.apply(CHAIN)
    first = start("a", "chain")
    await world.scheduler.start_many([first])
    assert [c.step for c in world.sent(ExecuteStep, first.order_run_id)] == ["one"]
    await world.scheduler.cancel(CancelOrderRun(order_run_id=first.order_run_id))  # room
    await world.apply(recipe("a", "chain", {"first": NOOP}))
    second = start("a", "chain")
    await world.scheduler.start_many([second])
    assert [c.step for c in world.sent(ExecuteStep, second.order_run_id)] == ["first"]


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("idempotency_key", IDEMPOTENCY_KEY_MAX),
        ("parent_recipe", RECIPE_REF_MAX),
        ("root_recipe", RECIPE_REF_MAX),
    ],
)
async def test_start_text_over_its_limit_is_refused_naming_the_field(
    field: str, limit: int
) -> None:
    world = World()
    await world.apply(CHAIN)
    longest = start("a", "chain", **{field: "k" * limit})
    too_long = start("a", "chain", **{field: "k" * (limit + 1)})
    await world.scheduler.start(too_long)
    await world.scheduler.start(longest)
    [refused] = world.sent(OrderRunRejected, too_long.order_run_id)
    assert refused.reason == f"{field}: {limit + 1} characters, longer than the limit of {limit}"
    assert world.sent(OrderRunStarted, too_long.order_run_id) == []
    assert len(world.sent(OrderRunStarted, longest.order_run_id)) == 1


async def test_a_cancel_reason_over_the_limit_is_refused_and_the_run_goes_on() -> None:
    world = World()
    await world.apply(CHAIN)
    cmd = start("a", "chain")
    await world.scheduler.start(cmd)
    too_long = CancelOrderRun(order_run_id=cmd.order_run_id, reason="r" * (CANCEL_REASON_MAX + 1))
    await world.scheduler.cancel(too_long)
    [refused] = world.sent(OrderRunRejected, cmd.order_run_id)
    assert refused.reason == (
        f"reason: {CANCEL_REASON_MAX + 1} characters, longer than the limit of {CANCEL_REASON_MAX}"
    )
    assert world.sent(OrderRunFinished, cmd.order_run_id) == []
    longest = CancelOrderRun(order_run_id=cmd.order_run_id, reason="r" * CANCEL_REASON_MAX)
    await world.scheduler.cancel(longest)
    [done] = world.sent(OrderRunFinished, cmd.order_run_id)
    assert done.status is RunStatus.CANCELLED


async def test_step_events_of_runs_known_here_go_at_once_and_a_run_changed_elsewhere_is_reread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch on runs this replica knows is written in one statement, without locks; when
    another replica moved a run on since, that statement is undone and the batch is decided
    again on what is stored."""
    here = World()
    elsewhere = World(tables=here.tables)  # a second replica on the same tables
    steps = {"one": NOOP, "two": {**NOOP, "needs": ["one"]}, "three": {**NOOP, "needs": ["two"]}}
    await here.apply(recipe("a", "three", steps))
    locked: list[object] = []
    claim_and_lock = here.scheduler.store.claim_and_lock

    async def counted(*args: object) -> object:
        locked.append(args)
        return await claim_and_lock(*args)

    monkeypatch.setattr(here.scheduler.store, "claim_and_lock", counted)
    redone = REGISTRY.get_sample_value("sous_scheduler_batches_redone_total") or 0.0
    cmd = start("a", "three")
    await here.scheduler.start(cmd)
    [one] = here.sent(ExecuteStep, cmd.order_run_id)
    await finish(here, one)
    [_, two] = here.sent(ExecuteStep, cmd.order_run_id)
    assert two.step == "two"
    assert locked == [], "a run known here moves on without a lock"
    await elsewhere.scheduler.cancel(CancelOrderRun(order_run_id=cmd.order_run_id, reason="x"))
    await finish(here, two)
    assert len(locked) == 1, "the batch went again the locking way"
    assert REGISTRY.get_sample_value("sous_scheduler_batches_redone_total") == redone + 1
    assert [m.step for m in here.sent(ExecuteStep, cmd.order_run_id)] == ["one", "two"]
    [ended] = here.sent(OrderRunFinished, cmd.order_run_id)
    assert ended.status is RunStatus.CANCELLED


async def test_a_completion_nobody_listens_to_needs_no_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing to do is only noted as seen; a trigger added since is heard."""
    world = World()
    follow_a = recipe(
        "b", "follow", {"x": NOOP}, triggers=[{"on": {"domain": "a"}, "variation": "prod"}]
    )
    await world.apply(follow_a)
    await world.triggers.on_completed(_done("a", "d1"))  # heard: the registry view is known
    transactions: list[None] = []
    transaction = world.host.transaction

    def counted() -> Any:
        transactions.append(None)
        return transaction()

    monkeypatch.setattr(world.host, "transaction", counted)
    nobody = _done("c", "d1")
    await world.triggers.on_completed(nobody)
    assert transactions == [], "no trigger or monitor listens to domain c"
    assert ("sous-scheduler", nobody.message_id) in world.tables.inbox, "noted as seen"
    follow_c = recipe(
        "b", "after-c", {"x": NOOP}, triggers=[{"on": {"domain": "c"}, "variation": "prod"}]
    )
    await world.apply(follow_c)
    await world.triggers.on_completed(_done("c", "d2"))
    started = [*world.sent(OrderRunStarted), *world.sent(OrderRunQueued)]
    assert sorted(m.recipe for m in started) == ["after-c", "follow"]


async def test_a_completion_heard_here_goes_to_its_transaction_without_a_look_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry view's generation is read once, in the transaction, not before it too."""
    world = World()
    follow_a = recipe(
        "b", "follow", {"x": NOOP}, triggers=[{"on": {"domain": "a"}, "variation": "prod"}]
    )
    await world.apply(follow_a)
    await world.triggers.on_completed(_done("a", "d1"))  # the registry view is known here
    looks: list[None] = []
    registry_generation = world.scheduler.store.registry_generation

    async def counted(conn: Any) -> Any:
        looks.append(None)
        return await registry_generation(conn)

    monkeypatch.setattr(world.scheduler.store, "registry_generation", counted)
    await world.triggers.on_completed(_done("a", "d2"))
    assert looks == []
    started = [*world.sent(OrderRunStarted), *world.sent(OrderRunQueued)]
    assert [m.recipe for m in started] == ["follow", "follow"]


async def test_a_batch_moves_runs_on_at_once_and_leaves_their_ends_to_the_locking_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    steps = {"one": NOOP, "two": {**NOOP, "needs": ["one"]}, "three": {**NOOP, "needs": ["two"]}}
    await world.apply(CHAIN, recipe("a", "three", steps))
    ending, going = start("a", "chain"), start("a", "three")
    for cmd in (ending, going):
        await world.scheduler.start(cmd)
    await finish(world, world.sent(ExecuteStep, ending.order_run_id)[-1])
    locked: list[list[tuple[uuid.UUID, uuid.UUID | None]]] = []
    claim_and_lock = world.scheduler.store.claim_and_lock

    async def counted(tx: Any, consumer: str, messages: Any) -> Any:
        locked.append(messages)
        return await claim_and_lock(tx, consumer, messages)

    monkeypatch.setattr(world.scheduler.store, "claim_and_lock", counted)
    batch = [
        *answers(world.sent(ExecuteStep, ending.order_run_id)[-1]),  # its last step
        *answers(world.sent(ExecuteStep, going.order_run_id)[-1]),
    ]
    await world.scheduler.on_run_events(batch)
    assert [{run for _, run in messages} for messages in locked] == [{ending.order_run_id}]
    [done] = world.sent(OrderRunFinished, ending.order_run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert [m.step for m in world.sent(ExecuteStep, going.order_run_id)] == ["one", "two"]
    claimed = {m for _, m in world.tables.inbox}
    assert {e.message_id for e in batch} <= claimed


def _monitored() -> list[Any]:
    """finance/revenue writes `wh.revenue`, watched by a monitor; marketing waits on it."""
    finance = {
        "domain": "finance",
        "monitors": {
            "fresh": {
                "dataset": "wh.revenue",
                "kitchen": "prod",
                "schedule": "0 * * * *",
                "tests": [{"name": "rows", "check": {"kind": "row_count", "table": "t"}}],
            }
        },
    }
    revenue = recipe("finance", "revenue", {"load": {**NOOP, "outputs": ["wh.other"]}})
    # The prod kitchen's own version of the recipe is the one its runs ran: it writes wh.revenue.
    in_prod = recipe("finance", "revenue", {"load": {**NOOP, "outputs": ["wh.revenue"]}})
    in_prod = in_prod.model_copy(
        update={"entity_id": "recipe:finance/revenue@prod", "kitchen": "prod"}
    )
    after = recipe(
        "marketing",
        "campaign",
        {"send": NOOP},
        triggers=[{"on": {"domain": "finance"}, "variation": "prod", "require": "monitors_pass"}],
    )
    return [entity(EntityKind.DOMAIN, "finance", finance), revenue, in_prod, after]


def _check(passed: bool) -> TestSuiteFinished:
    check = uuid.uuid4()
    return TestSuiteFinished(
        order_run_id=check,
        step_run_id=check,
        suite_id=check,
        step="fresh",
        summary=TestSummary(passed=int(passed), failed=int(not passed)),
        blocking=not passed,
        failed_tests=[] if passed else ["rows"],
        domain="finance",
        kitchen="prod",
        monitor="fresh",
        dataset="wh.revenue",
    )


async def test_a_failing_monitor_holds_its_trigger_until_a_pass_releases_it_once() -> None:
    world = World()
    await world.apply(*_monitored())
    await world.triggers.monitors.on_results([_check(passed=False)])
    await world.triggers.on_completed(_done("finance", recipe="revenue"))
    [held] = world.sent(TriggerHeld)
    assert "fresh" in held.reason
    assert not [m for m in world.sent(OrderRunStarted) if m.domain == "marketing"]

    passed = _check(passed=True)
    await world.triggers.monitors.on_results([passed, _check(passed=True), passed])
    await world.triggers.monitors.on_results([passed])
    [started] = [m for m in world.sent(OrderRunStarted) if m.domain == "marketing"]
    assert started.order_run_id == held.order_run_id


async def test_what_a_command_names_still_on_its_way_is_caught_up_on_between_two_tries() -> None:
    """The catch-up reads the changelog outside any transaction, then the command goes again.

    Here the catch-up applies the late recipe through the scheduler itself, which opens a
    transaction: inside the command's own one it would fail as nested.
    """
    world = World()
    await world.apply()
    late = recipe("late", "daily", {"x": NOOP}, params={"day": {"required": False}})
    catch_ups: list[int] = []

    async def catch_up() -> int:
        await world.scheduler.on_registry_change(late)
        catch_ups.append(1)
        return 1

    world.scheduler.refresh_registry = catch_up
    cmd = start("late", "daily")
    await world.scheduler.start(cmd)
    assert [m.order_run_id for m in world.sent(OrderRunStarted)] == [cmd.order_run_id]

    backfill = StartBackfill(
        backfill_id=uuid.uuid4(),
        domain="late",
        recipe="other",
        variation="prod",
        range=BackfillRange(param="day", start="2026-11-01", end="2026-11-02"),
    )
    await world.backfills.handle(backfill)  # a recipe nobody applied: caught up on, refused
    assert len(catch_ups) == 2
    [refused] = world.sent(BackfillRejected)
    assert "other" in refused.reason
