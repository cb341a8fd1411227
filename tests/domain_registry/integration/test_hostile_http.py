"""Hostile REST bodies: each gets a 4xx naming what is wrong and where, none a 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from sous_contracts import wire
from sous_contracts.runs import StartOrderRun
from sous_contracts.topics import ORDER_RUN_COMMANDS
from tests.domain_registry.conftest import read_topic
from tests.domain_registry.mesh import mesh_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RUN = '{"domain": "sales", "recipe": "daily", "variation": "dev", "params": {"day": %s}}'


@pytest.fixture(scope="module")
async def reg(shared_registry):
    r = await shared_registry.client.post("/v1/apply", json={"files": mesh_files()})
    assert r.status_code == 200, r.text
    return shared_registry


async def _post_run(reg, day_json: str):
    return await reg.client.post(
        "/v1/runs",
        content=(RUN % day_json).encode(),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("day", "fragment"),
    [
        ("NaN", "NaN is not JSON"),
        ("Infinity", "Infinity is not JSON"),
        ("1" + "0" * 5000, "longer than 20 digits"),
        ('"a\\u0000b"', "params.day: text contains \\u0000"),
        ('"\\udc00"', "params.day: text contains an unpaired surrogate"),
        ("[" * 100 + "]" * 100, "nested deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32"),
        ('{"nope', "not JSON"),
    ],
)
async def test_json_no_reader_can_hold_is_refused_with_the_place(reg, day, fragment) -> None:
    r = await _post_run(reg, day)
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body"]
    assert fragment in problem["msg"]


async def test_params_larger_than_their_limit_are_refused_naming_the_field(reg) -> None:
    r = await _post_run(reg, json.dumps("x" * 70_000))
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "params"]
    assert "more than the limit of 65536 bytes" in problem["msg"]


async def test_a_body_over_the_limit_is_refused_with_413_naming_the_limit(reg) -> None:
    limit = reg.settings.max_body_bytes
    r = await reg.client.post(
        "/v1/apply",
        content=b" " * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["detail"] == (
        f"request body of {limit + 1} bytes is larger than the limit of {limit} bytes"
        " (SOUS_DOMAIN_REGISTRY_MAX_BODY_BYTES)"
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(limit // 65_536 + 2):
            yield b" " * 65_536

    r = await reg.client.post(
        "/v1/apply", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"]


async def test_after_hostile_bodies_a_good_request_is_served(reg) -> None:
    assert (await _post_run(reg, "NaN")).status_code == 422
    r = await _post_run(reg, '"2026-11-24"')
    assert r.status_code == 202, r.text
    run = (await reg.client.get(f"/v1/runs/{r.json()['order_run_id']}")).json()
    assert run["params"] == {"day": "2026-11-24"}


async def test_a_megabyte_of_params_is_refused_and_the_next_run_still_reaches_kafka(reg) -> None:
    huge = json.dumps("x" * 1_100_000)
    assert len(huge) < reg.settings.max_body_bytes  # the params limit refuses it, not the body's
    r = await _post_run(reg, huge)
    assert r.status_code == 422, r.text[:500]
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "params"]
    assert f"more than the limit of {wire.MAX_PARAMS_BYTES} bytes" in problem["msg"]

    r = await _post_run(reg, '"2026-11-25"')
    assert r.status_code == 202, r.text
    run_id = uuid.UUID(r.json()["order_run_id"])
    topic = ORDER_RUN_COMMANDS.full_name(reg.settings.kafka.topic_prefix)
    got = await read_topic(
        reg.settings.kafka,
        topic,
        until=lambda ms: any(isinstance(m, StartOrderRun) and m.order_run_id == run_id for m in ms),
    )
    (start,) = [m for m in got if isinstance(m, StartOrderRun) and m.order_run_id == run_id]
    assert start.params == {"day": "2026-11-25"}
    assert all(len(json.dumps(m.params)) < 1_000 for m in got if isinstance(m, StartOrderRun))
    assert await reg.pool.fetchval("SELECT count(*) FROM outbox_refused") == 0
