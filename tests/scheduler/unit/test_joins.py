"""Keyed joins: what an arrival does to a key's window, and what an expired window says."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sous_contracts.common import RunStatus
from sous_contracts.runs import TRIGGER_KEY_MAX, DomainRunCompleted
from sous_contracts.specs import TriggerSpec
from sous_scheduler.domain.params import ParamError
from sous_scheduler.domain.triggers import (
    Arrival,
    JoinWindow,
    Listener,
    join_arrive,
    partition_key,
    start_command,
    window_expired,
)
from tests.scheduler.world import context_at

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SALES = {"domain": "sales", "recipe": "daily"}
PAYMENTS = {"domain": "payments", "recipe": "settle"}


def trigger(**kw: Any) -> TriggerSpec:
    values: dict[str, Any] = {
        "all": [SALES, PAYMENTS],
        "within": "6h",
        "key": "${event.params.day}",
        "variation": "prod",
        "params": {"day": "${key}"},
        **kw,
    }
    return TriggerSpec.model_validate(values)


def done(domain: str, day: str, **kw: Any) -> DomainRunCompleted:
    return DomainRunCompleted(
        domain=domain,
        recipe="daily" if domain == "sales" else "settle",
        variation="prod",
        kitchen="prod",
        status=RunStatus.SUCCEEDED,
        order_run_id=uuid.uuid4(),
        params={"day": day},
        **kw,
    )


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def test_the_key_is_read_from_the_event() -> None:
    assert partition_key(trigger(), done("sales", "2026-11-01")) == "2026-11-01"
    assert partition_key(trigger(key=None, params={}), done("sales", "2026-11-01")) is None
    with pytest.raises(ParamError, match=r"\$\{event.params.region\} does not resolve"):
        partition_key(trigger(key="${event.params.region}"), done("sales", "2026-11-01"))


def test_a_key_longer_than_the_limit_is_refused() -> None:
    longest = "d" * TRIGGER_KEY_MAX
    assert partition_key(trigger(), done("sales", longest)) == longest
    with pytest.raises(
        ParamError, match=r"^resolves to 257 characters, longer than the limit of 256$"
    ):
        partition_key(trigger(), done("sales", longest + "d"))
    # A key made of several params is measured once resolved.
    joined = trigger(key="${event.params.day}/${event.params.region}")
    wide = done("sales", longest[:200]).model_copy(
        update={"params": {"day": longest[:200], "region": longest[:100]}}
    )
    with pytest.raises(ParamError, match="301 characters"):
        partition_key(joined, wide)


def test_a_number_key_becomes_text() -> None:
    event = done("sales", "d").model_copy(update={"params": {"day": 20261101}})
    assert partition_key(trigger(), event) == "20261101"


def test_all_fires_once_every_pattern_of_the_key_arrived() -> None:
    t, new_id = trigger(), ids()
    first = join_arrive(t, None, [0], done("sales", "A"), T0, new_id)
    assert not first.fire
    assert first.window is not None
    assert first.window.deadline == T0 + timedelta(hours=6)
    assert set(first.window.arrivals) == {0}
    again = join_arrive(t, first.window, [0], done("sales", "A"), T0 + timedelta(hours=1), new_id)
    assert not again.fire, "the same upstream twice is not a join"
    both = join_arrive(t, again.window, [1], done("payments", "A"), T0 + timedelta(hours=2), new_id)
    assert both.fire
    assert both.window is None, "a fired join forgets its key"
    assert both.expired is None


def test_at_least_needs_n_patterns() -> None:
    t = trigger(
        all=None,
        at_least={"n": 2, "of": [SALES, PAYMENTS, {"domain": "fx"}]},
    )
    step = join_arrive(t, None, [2], done("sales", "A"), T0, ids())
    assert not step.fire
    assert join_arrive(t, step.window, [0], done("sales", "A"), T0, ids()).fire


def test_an_arrival_after_the_deadline_ends_the_old_window_and_opens_a_new_one() -> None:
    t, new_id = trigger(), ids()
    old = join_arrive(t, None, [0], done("sales", "A"), T0, new_id).window
    assert old is not None
    late = join_arrive(t, old, [1], done("payments", "A"), T0 + timedelta(hours=6), new_id)
    assert not late.fire
    assert late.expired == old
    assert late.window is not None
    assert set(late.window.arrivals) == {1}
    assert late.window.window_id != old.window_id


def test_any_with_a_window_fires_once_per_key_and_absorbs_the_rest() -> None:
    t, new_id = trigger(all=None, any=[SALES, PAYMENTS]), ids()
    first = join_arrive(t, None, [0], done("sales", "A"), T0, new_id)
    assert first.fire
    second = join_arrive(t, first.window, [1], done("payments", "A"), T0, new_id)
    assert not second.fire
    after = join_arrive(t, second.window, [0], done("sales", "A"), T0 + timedelta(hours=7), new_id)
    assert after.fire
    assert after.expired is None, "a window that fired has nothing to report"


def test_any_without_a_window_fires_every_time() -> None:
    t = trigger(all=None, any=[SALES], within=None)
    assert join_arrive(t, None, [0], done("sales", "A"), T0, ids()).fire


def test_an_expired_window_names_what_arrived_and_what_did_not() -> None:
    listener = Listener("finance", "revenue", 1, trigger(name="by-day"))
    sales = done("sales", "A")
    window = JoinWindow(
        uuid.UUID(int=9),
        T0,
        T0 + timedelta(hours=6),
        {0: Arrival(sales.message_id, sales.order_run_id)},
    )
    event = window_expired(listener, "prod", "A", window, context_at(T0 + timedelta(hours=6)))
    assert event is not None
    assert event.trigger_id == "finance/revenue#by-day"
    assert (event.domain, event.recipe, event.kitchen, event.key) == (
        "finance",
        "revenue",
        "prod",
        "A",
    )
    assert event.order_run_id == window.window_id
    assert [(u.domain, u.arrived, u.order_run_id) for u in event.upstreams] == [
        ("sales", True, sales.order_run_id),
        ("payments", False, None),
    ]
    assert event.needed == 2
    assert (
        window_expired(
            listener, "prod", "A", JoinWindow(window.window_id, T0, T0, fired=True), context_at(T0)
        )
        is None
    )


def test_the_run_gets_the_key_and_the_mapped_params() -> None:
    listener = Listener(
        "finance", "revenue", 0, trigger(params={"day": "${key}", "from": "${event.domain}"})
    )
    command = start_command(
        listener, done("payments", "A"), uuid.UUID(int=3), context_at(T0), key="A"
    )
    assert command.params == {"day": "A", "from": "payments"}
    assert command.trigger_event["key"] == "A"


def test_an_expired_window_depends_on_its_context_alone() -> None:
    listener = Listener("finance", "revenue", 1, trigger(name="by-day"))
    window = JoinWindow(uuid.UUID(int=9), T0, T0 + timedelta(hours=6))
    at = T0 + timedelta(hours=6)
    made = [window_expired(listener, "prod", "A", window, context_at(at)) for _ in range(2)]
    assert made[0] == made[1]
    assert made[0] is not None
    assert made[0].occurred_at == at
