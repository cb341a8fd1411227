"""A domain system publishes a completion whose trigger key is too long to index.

Built by hand and signed as any domain system would: a DomainRunCompleted whose `day` param,
the key of a keyed join, is 60 kB of random text (under the 64 KiB params limit, far over
what a join window's index entry can hold). The scheduler refuses that key for the trigger,
records the refusal as the firing's outcome (no database error, no retries, no dead letter),
and the completion sent behind it on the same partition joins and fires as usual.
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from sous_contracts.deadletter import DeadLetter
from sous_contracts.runs import TRIGGER_KEY_MAX, OrderRunStarted
from sous_contracts.topics import DEAD_LETTERS, DOMAIN_EVENTS, RUN_EVENTS
from tests.scheduler.integration.conftest import publish_registry
from tests.scheduler.integration.test_keyed_joins import PAYMENTS, SALES, revenue
from tests.scheduler.integration.test_oversized_commands import send_signed
from tests.scheduler.integration.test_runs import read_topics
from tests.scheduler.integration.test_signed_commands import ALICE, completed_json, grant

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def done_json(upstream: dict, day: str) -> dict:
    return {**completed_json(upstream["domain"]), **upstream, "params": {"day": day}}


def finance_started(seen: list) -> list[OrderRunStarted]:
    return [m for m in seen if isinstance(m, OrderRunStarted) and m.domain == "finance"]


async def test_a_key_too_long_to_index_is_refused_and_the_events_behind_it_fire(
    kafka_settings, scheduler
) -> None:
    scopes = {"sales": ["publish-events"], "payments": ["publish-events"]}
    await publish_registry(kafka_settings, scheduler, [grant(ALICE, scopes), revenue()])
    # Random text: PostgreSQL cannot compress it under its index entry limit.
    hostile = done_json(SALES, secrets.token_hex(30_000))
    barrier = done_json(SALES, "2026-11-01")
    await send_signed(
        kafka_settings, [done_json(PAYMENTS, "2026-11-01")], "payments", DOMAIN_EVENTS
    )
    await send_signed(kafka_settings, [hostile, barrier], "sales", DOMAIN_EVENTS)
    # The barrier: behind the hostile event on its partition, it closes day 1's join.
    seen = await read_topics(kafka_settings, [RUN_EVENTS, DEAD_LETTERS], finance_started)
    [run] = finance_started(seen)
    assert run.params == {"day": "2026-11-01"}
    assert run.cause is not None
    assert barrier["message_id"] in {str(m) for m in run.cause.upstream_message_ids}

    outcome = await scheduler.rt.pool.fetchval(
        "SELECT outcome FROM trigger_firings WHERE upstream_message_id = $1",
        uuid.UUID(hostile["message_id"]),
    )
    assert outcome == (
        "refused: key '${event.params.day}': resolves to 60000 characters, longer than the"
        f" limit of {TRIGGER_KEY_MAX}"
    )
    assert await scheduler.rt.pool.fetchval("SELECT count(*) FROM join_windows") == 0
    letters = [m for m in seen if isinstance(m, DeadLetter)]
    assert not any(hostile["message_id"] in m.payload for m in letters), letters
