"""A child process for the outbox crash test: commit state + outbox row, then hang mid-publish.

It prints `claimed` once the relay holds the rows and is about to publish; the test then
kills it with SIGKILL, as a crash between commit and publish would.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import asyncpg

from sous_common.outbox import OutboxRelay, add
from sous_contracts.testing import sample_messages


async def main(url: str, schema: str, prefix: str, message_id: str) -> None:
    pool = await asyncpg.create_pool(url, server_settings={"search_path": schema})
    message = sample_messages()[0].model_copy(update={"message_id": uuid.UUID(message_id)})
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TABLE state (v int)")
        await conn.execute("INSERT INTO state VALUES (1)")
        await add(conn, [message], schema=schema, prefix=prefix)
    print("committed", flush=True)

    async def hang(*_: object) -> asyncio.Future[None]:
        print("claimed", flush=True)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    await OutboxRelay(pool, hang, schema=schema).drain_once()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
