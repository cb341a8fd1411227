"""Outbox rows of a transaction: queued by each emit, written in one statement before COMMIT."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from sous_common import outbox
from sous_common.commits import GroupCommit
from sous_contracts.envelope import Envelope
from sous_contracts.testing import sample_messages

pytestmark = pytest.mark.postgres


def _messages(n: int) -> list[Envelope]:
    """`n` messages with fresh ids (the samples' ids are fixed)."""
    samples = sample_messages()
    return [
        samples[i % len(samples)].model_copy(update={"message_id": uuid.uuid4()}) for i in range(n)
    ]


def _outbox_logger(sent: list[str]) -> Callable[[Any], None]:
    def logged(query: Any) -> None:
        if "INSERT INTO outbox" in query.query:
            sent.append(query.query)

    return logged


@asynccontextmanager
async def _outbox_inserts(conn: Any) -> AsyncIterator[list[str]]:
    """The outbox INSERT statements `conn` sends to the server while inside."""
    sent: list[str] = []
    logged = _outbox_logger(sent)
    conn.add_query_logger(logged)
    try:
        yield sent
    finally:
        conn.remove_query_logger(logged)


@pytest.fixture
async def logged_pool(
    pool: asyncpg.Pool, db_settings: Any, schema: str
) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """A pool on the test's schema and the outbox INSERT statements its connections send."""
    sent: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(_outbox_logger(sent))

    logged = await asyncpg.create_pool(
        db_settings.url,
        min_size=1,
        max_size=2,
        init=init,
        server_settings={"search_path": f"{schema},public"},
    )
    assert logged is not None
    try:
        yield logged, sent
    finally:
        await logged.close()


async def _stored(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT id, message_id FROM outbox WHERE message_id = ANY($1::uuid[]) ORDER BY id",
            ids,
        )
    )


async def test_emits_of_a_transaction_are_one_statement_in_emit_order(pool, schema) -> None:
    first, second, third = _messages(2), _messages(1), _messages(3)
    between = _messages(1)
    async with outbox.outbox_transaction(pool) as conn, _outbox_inserts(conn) as sent:
        assert await outbox.add(conn, first, schema=schema) == 2
        # Another transaction writes and commits while this one is open.
        async with pool.acquire() as other:
            await outbox.add(other, between, schema=schema)
        assert await outbox.add(conn, second, schema=schema) == 1
        assert await outbox.pending(conn, second[0].message_id)  # queued, not yet written
        assert await outbox.add(conn, third, schema=schema) == 3
        assert sent == []  # nothing written before the end of the transaction
    emitted = [m.message_id for m in first + second + third]
    rows = await _stored(pool, [*emitted, between[0].message_id])
    assert [r["message_id"] for r in rows] == [between[0].message_id, *emitted]
    ids = [r["id"] for r in rows[1:]]
    assert ids == list(range(ids[0], ids[0] + len(emitted)))  # one statement: contiguous


async def test_one_insert_statement_for_the_whole_transaction(logged_pool, schema) -> None:
    pool, sent = logged_pool
    async with outbox.outbox_transaction(pool) as conn:
        for m in _messages(4):
            await outbox.add(conn, [m], schema=schema)
        await outbox.add(conn, [], schema=schema)
    assert len(sent) == 1


async def test_a_failed_transaction_writes_nothing(pool, schema) -> None:
    messages = _messages(3)
    with pytest.raises(RuntimeError, match="refused"):
        async with outbox.outbox_transaction(pool) as conn:
            await outbox.add(conn, messages, schema=schema)
            raise RuntimeError("refused")
    assert await _stored(pool, [m.message_id for m in messages]) == []


async def test_a_rolled_back_savepoint_drops_its_emits_only(pool, schema) -> None:
    kept, dropped = _messages(1), _messages(2)
    async with outbox.outbox_transaction(pool) as conn:
        await outbox.add(conn, kept, schema=schema)
        with pytest.raises(ValueError, match="refusal"):
            async with outbox.savepoint(conn):
                await outbox.add(conn, dropped, schema=schema)
                raise ValueError("refusal")
    rows = await _stored(pool, [m.message_id for m in kept + dropped])
    assert [r["message_id"] for r in rows] == [kept[0].message_id]


async def test_an_emit_outside_such_a_transaction_is_written_at_once(pool, schema) -> None:
    messages = _messages(2)
    async with pool.acquire() as conn, conn.transaction():
        assert await outbox.add(conn, messages, schema=schema) == 2
        ids = [m.message_id for m in messages]
        seen = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE message_id = ANY($1::uuid[])", ids
        )
        assert seen == 2


async def test_group_commit_pieces_share_one_statement_in_order(logged_pool, schema) -> None:
    pool, sent = logged_pool
    commits = GroupCommit(pool)
    pieces = [_messages(2) for _ in range(5)]

    async def emit(piece: list[Envelope]) -> None:
        async def work(conn: object) -> None:
            await outbox.add(conn, piece, schema=schema)  # type: ignore[arg-type]

        await commits.run(work)

    await asyncio.gather(*(emit(piece) for piece in pieces))
    assert len(sent) == 1  # the pieces arrived together: one transaction, one statement
    emitted = [m.message_id for piece in pieces for m in piece]
    rows = await _stored(pool, emitted)
    assert [r["message_id"] for r in rows] == emitted


@pytest.fixture
async def notes(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A table of the test's schema that `at_commit` writes go to."""
    await pool.execute("CREATE TABLE notes (n int PRIMARY KEY, said text NOT NULL)")
    await pool.execute("INSERT INTO notes VALUES (0, 'old'), (9, 'gone')")
    return "notes"


async def _notes(pool: asyncpg.Pool) -> list[tuple[int, str]]:
    return [(r["n"], r["said"]) for r in await pool.fetch("SELECT n, said FROM notes ORDER BY n")]


async def test_writes_at_commit_go_in_the_outbox_statement(logged_pool, schema, notes) -> None:
    pool, sent = logged_pool
    messages = _messages(2)
    async with outbox.outbox_transaction(pool) as conn:
        await outbox.add(conn, messages[:1], schema=schema)
        await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 1, "one")
        await outbox.at_commit(conn, "UPDATE notes SET said = $2 WHERE n = $1", 0, "new")
        await outbox.at_commit(conn, "DELETE FROM notes WHERE n = ANY($1::int[])", [9])
        seen = await conn.fetch("SELECT n, said FROM notes ORDER BY n")
        assert [tuple(r) for r in seen] == [(0, "old"), (9, "gone")], "not written yet"
        await outbox.add(conn, messages[1:], schema=schema)
    assert len(sent) == 1
    assert "INSERT INTO notes" in sent[0], "the writes and the rows: one statement"
    assert await _notes(pool) == [(0, "new"), (1, "one")]
    rows = await _stored(pool, [m.message_id for m in messages])
    assert [r["message_id"] for r in rows] == [m.message_id for m in messages]


async def test_writes_at_commit_alone_or_outside_such_a_transaction(pool, schema, notes) -> None:
    async with outbox.outbox_transaction(pool) as conn:
        await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 1, "alone")
    async with pool.acquire() as conn, conn.transaction():
        await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 2, "at once")
        assert await conn.fetchval("SELECT said FROM notes WHERE n = 2") == "at once"
    assert await _notes(pool) == [(0, "old"), (1, "alone"), (2, "at once"), (9, "gone")]


async def test_writes_at_commit_are_dropped_with_their_savepoint_or_transaction(
    pool, schema, notes
) -> None:
    async with outbox.outbox_transaction(pool) as conn:
        await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 1, "kept")
        with pytest.raises(ValueError, match="refusal"):
            async with outbox.savepoint(conn):
                await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 2, "dropped")
                raise ValueError("refusal")
    with pytest.raises(RuntimeError, match="refused"):
        async with outbox.outbox_transaction(pool) as conn:
            await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 3, "failed")
            raise RuntimeError("refused")
    assert await _notes(pool) == [(0, "old"), (1, "kept"), (9, "gone")]


async def test_writes_at_once_are_one_statement_outside_any_transaction(
    logged_pool, schema, notes
) -> None:
    pool, sent = logged_pool
    messages = _messages(2)
    returned: list[list[dict[str, object]]] = []
    woken = asyncio.Event()

    def notified(*_: object) -> None:
        woken.set()

    listener = await pool.acquire()
    await listener.add_listener(outbox.channel(schema), notified)
    try:
        async with outbox.at_once(pool, schema) as conn:
            await outbox.add(conn, messages[:1], schema=schema)
            await outbox.expecting(
                conn,
                "UPDATE notes SET said = $2 WHERE n = $1 RETURNING n, said",
                0,
                "new",
                rows=1,
                then=returned.append,
            )
            await outbox.at_commit(conn, "DELETE FROM notes WHERE n = $1", 9)
            await outbox.add(conn, messages[1:], schema=schema)
            assert not conn.is_in_transaction()
            seen = await conn.fetch("SELECT n, said FROM notes ORDER BY n")
            assert [tuple(r) for r in seen] == [(0, "old"), (9, "gone")], "not written yet"
        await asyncio.wait_for(woken.wait(), 10)  # the relay is woken as after a COMMIT
    finally:
        await listener.remove_listener(outbox.channel(schema), notified)
        await pool.release(listener)
    assert len(sent) == 1
    assert "UPDATE notes" in sent[0], "the writes and the rows: one statement"
    assert returned == [[{"n": 0, "said": "new"}]]
    assert await _notes(pool) == [(0, "new")]
    rows = await _stored(pool, [m.message_id for m in messages])
    assert [r["message_id"] for r in rows] == [m.message_id for m in messages]


async def test_writes_at_once_that_find_other_rows_than_expected_write_nothing(
    pool, schema, notes
) -> None:
    messages = _messages(1)
    returned: list[list[dict[str, object]]] = []
    with pytest.raises(outbox.Conflict):
        async with outbox.at_once(pool, schema) as conn:
            await outbox.add(conn, messages, schema=schema)
            await outbox.at_commit(conn, "INSERT INTO notes VALUES ($1, $2)", 1, "one")
            await outbox.expecting(
                conn,
                "UPDATE notes SET said = 'x' WHERE n = ANY($1::int[]) RETURNING n",
                [0, 5],
                rows=2,
                then=returned.append,
            )
    assert returned == []
    assert await _notes(pool) == [(0, "old"), (9, "gone")]
    assert await _stored(pool, [m.message_id for m in messages]) == []
