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

`GroupCommit.run_each(work, item)` is for work done alike for many items (a row each): the
items of one transaction go to one call `work(conn, items)`, which writes them in one statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from opentelemetry.context import Context

from sous_common import tracing
from sous_common.db import AnyConnection
from sous_common.outbox import outbox_transaction

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Work = Callable[[AnyConnection], Awaitable[Any]]
EachWork = Callable[[AnyConnection, list[ItemT]], Awaitable[Sequence[T]]]
"""Work for many items at once: returns one result per item, in their order."""


@dataclass(frozen=True)
class _Item(Generic[ItemT, T]):
    work: EachWork[ItemT, T]
    item: ItemT


Piece = tuple[Work | _Item[Any, Any], asyncio.Future[Any], Context | None]


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
        result: T = await self._queued(work)
        return result

    async def run_each(self, work: EachWork[ItemT, T], item: ItemT) -> T:
        """Run `work(conn, items)` once for the items queued with it for one transaction.

        Returns this item's result once the transaction committed. When that transaction
        fails, the item is run again alone (`work(conn, [item])`), as `run` does.
        """
        result: T = await self._queued(_Item(work, item))
        return result

    async def _queued(self, work: Work | _Item[Any, Any]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
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
        try:
            async with outbox_transaction(self.pool) as conn:
                results = await _run(conn, pieces)
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


async def _run(conn: AnyConnection, pieces: list[Piece]) -> list[Any]:
    """Run the pieces in order; the items of one `EachWork` go together, at the first's turn."""
    together: dict[EachWork[Any, Any], list[int]] = {}
    for i, (work, _, _) in enumerate(pieces):
        if isinstance(work, _Item):
            together.setdefault(work.work, []).append(i)
    results: list[Any] = [None] * len(pieces)
    for i, (work, _, context) in enumerate(pieces):
        with tracing.within(context):
            if not isinstance(work, _Item):
                results[i] = await work(conn)
            elif (group := together[work.work])[0] == i:
                items = [_item_of(pieces[j]) for j in group]
                outcomes = await work.work(conn, items)
                for j, outcome in zip(group, outcomes, strict=True):
                    results[j] = outcome
    return results


def _item_of(piece: Piece) -> Any:
    work = piece[0]
    assert isinstance(work, _Item)
    return work.item


def _settle(
    done: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if done.done():  # its caller gave up waiting; the work committed (or failed) anyway
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
