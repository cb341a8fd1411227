"""Group commit: the small transactions of many handlers committed as one.

A service under load runs many tiny transactions (an inbox claim, a row, an outbox message);
each costs a connection from the pool, BEGIN, COMMIT and the pool's reset, more than the
work itself. `GroupCommit.run(work)` queues a piece of work and returns its result once the
transaction that ran it committed. While one transaction is being written, the work arriving
meanwhile waits and then goes in the next one together, so an idle service commits each piece
at once and a busy one commits many per transaction.

A piece of work only touches the database through the connection it is given, so it can be
run again: when a shared transaction fails, each of its pieces is run again alone, and only
the one that fails gets the error. The outbox rows of all pieces go in one statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from opentelemetry.context import Context

from sous_common import tracing
from sous_common.db import AnyConnection
from sous_common.outbox import outbox_transaction

T = TypeVar("T")
Work = Callable[[AnyConnection], Awaitable[Any]]
Piece = tuple[Work, asyncio.Future[Any], Context | None]


class GroupCommit:
    """Runs pieces of work in shared transactions on one pool, one transaction at a time."""

    def __init__(self, pool: asyncpg.Pool, *, max_pieces: int = 200) -> None:
        self.pool = pool
        self.max_pieces = max_pieces
        self._queue: list[Piece] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AnyConnection], Awaitable[T]]) -> T:
        """Run `work(conn)` in a transaction; return its result once that committed.

        Raises what `work` raised (its transaction rolled back), or the database's error.
        """
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # The work runs in the writer's task, in the trace of the message it is done for.
        self._queue.append((work, done, tracing.current()))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="group-commit")
        with tracing.step("commit"):
            return await done

    async def _write(self) -> None:
        while self._queue:
            pieces, self._queue = self._queue[: self.max_pieces], self._queue[self.max_pieces :]
            await self._commit(pieces)

    async def _commit(self, pieces: list[Piece]) -> None:
        results: list[Any] = []
        try:
            async with outbox_transaction(self.pool) as conn:
                for work, _, context in pieces:
                    with tracing.within(context):
                        results.append(await work(conn))
        except Exception as exc:
            if len(pieces) == 1:
                _settle(pieces[0][1], error=exc)
                return
            for piece in pieces:  # find the one that fails; the others commit on their own
                await self._commit([piece])
            return
        except BaseException:  # cancelled: no piece is known to be committed
            for _, done, _ in pieces:
                done.cancel()
            raise
        for (_, done, _), result in zip(pieces, results, strict=True):
            _settle(done, result=result)


def _settle(
    done: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if done.done():  # its caller gave up waiting; the work committed (or failed) anyway
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
