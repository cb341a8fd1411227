"""Group commit: pieces of work arriving together share a transaction; a failing one fails alone."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sous_common import inbox
from sous_common.commits import GroupCommit

pytestmark = pytest.mark.postgres


async def test_pieces_arriving_together_share_transactions_and_all_commit(pool) -> None:
    commits = GroupCommit(pool)
    ids = [uuid.uuid4() for _ in range(100)]

    async def claim(message_id: uuid.UUID) -> int:
        async def work(conn) -> int:
            assert await inbox.claim(conn, "c", message_id)
            return int(await conn.fetchval("SELECT txid_current()"))

        return await commits.run(work)

    transactions = await asyncio.gather(*(claim(i) for i in ids))
    assert len(set(transactions)) < len(ids) / 5  # shared, not one each
    stored = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", ids
    )
    assert stored == len(ids)


async def test_a_failing_piece_fails_alone(pool) -> None:
    commits = GroupCommit(pool)
    ids = [uuid.uuid4() for _ in range(20)]
    bad = ids[7]

    async def claim(message_id: uuid.UUID) -> uuid.UUID:
        async def work(conn) -> uuid.UUID:
            assert await inbox.claim(conn, "c", message_id)
            if message_id == bad:
                raise ValueError("this piece is wrong")
            return message_id

        return await commits.run(work)

    results = await asyncio.gather(*(claim(i) for i in ids), return_exceptions=True)
    assert [r for r in results if isinstance(r, Exception)] == [results[7]]
    assert isinstance(results[7], ValueError)
    assert [r for r in results if not isinstance(r, Exception)] == ids[:7] + ids[8:]
    stored = {
        r["message_id"]
        for r in await pool.fetch(
            "SELECT message_id FROM inbox WHERE message_id = ANY($1::uuid[])", ids
        )
    }
    assert stored == set(ids) - {bad}  # the failing piece's claim rolled back with it


async def test_items_of_like_work_go_to_one_call_in_order(pool) -> None:
    commits = GroupCommit(pool)
    ids = [uuid.uuid4() for _ in range(30)]
    calls: list[list[uuid.UUID]] = []

    async def claim_all(conn, items: list[uuid.UUID]) -> list[str]:
        calls.append(items)
        await inbox.claim_many(conn, "c", items)
        return [i.hex for i in items]

    claimed = await asyncio.gather(*(commits.run_each(claim_all, i) for i in ids))
    assert calls == [ids]  # arrived together: one call for all, in their order
    assert claimed == [i.hex for i in ids]  # each item gets its own result
    stored = await pool.fetchval(
        "SELECT count(*) FROM inbox WHERE message_id = ANY($1::uuid[])", ids
    )
    assert stored == len(ids)


async def test_a_failing_item_fails_alone(pool) -> None:
    commits = GroupCommit(pool)
    ids = [uuid.uuid4() for _ in range(6)]
    bad = ids[2]

    async def claim_all(conn, items: list[uuid.UUID]) -> list[uuid.UUID]:
        await inbox.claim_many(conn, "c", items)
        if bad in items:
            raise ValueError("this item is wrong")
        return items

    results = await asyncio.gather(
        *(commits.run_each(claim_all, i) for i in ids), return_exceptions=True
    )
    assert isinstance(results[2], ValueError)
    assert [r for r in results if not isinstance(r, Exception)] == ids[:2] + ids[3:]
    stored = {
        r["message_id"]
        for r in await pool.fetch(
            "SELECT message_id FROM inbox WHERE message_id = ANY($1::uuid[])", ids
        )
    }
    assert stored == set(ids) - {bad}
