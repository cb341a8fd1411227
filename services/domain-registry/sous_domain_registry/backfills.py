"""Use cases of backfills: start, cancel and retry (commands via the outbox), read model."""

from __future__ import annotations

import uuid
from typing import Any

from sous_common import inbox
from sous_common.runtime import Runtime
from sous_contracts.backfills import (
    BackfillRange,
    BackfillRejected,
    BackfillUpdated,
    CancelBackfill,
    RetryBackfill,
    StartBackfill,
    expand,
)
from sous_domain_registry.adapters import backfills as rows
from sous_domain_registry.runs import PRODUCER, queue, target_kitchen


async def start_backfill(
    rt: Runtime,
    *,
    domain: str,
    recipe: str,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    range_: BackfillRange,
    concurrency: int,
    downstream: bool,
    principal: str,
) -> tuple[uuid.UUID, int]:
    """Queue StartBackfill in the outbox and record it; return its id and partition count.

    Raises:
        RangeError: the range does not expand (the reason says why).
        NotFoundError: the kitchen, recipe or variation does not exist.
    """
    count = len(expand(range_))
    backfill_id = uuid.uuid4()
    async with rt.transaction() as conn:
        kitchen = await target_kitchen(conn, domain, recipe, variation, kitchen)
        command = StartBackfill(
            backfill_id=backfill_id,
            domain=domain,
            recipe=recipe,
            variation=variation,
            kitchen=kitchen,
            params=params,
            range=range_,
            concurrency=concurrency,
            downstream=downstream,
            principal=principal,
            producer=PRODUCER,
        )
        await rows.requested(conn, command, kitchen)
        details = {"backfill": str(backfill_id), "range": range_.text(), "partitions": count}
        await queue(rt, conn, command, principal, "backfill.start", f"{domain}/{recipe}", details)
    return backfill_id, count


async def find_backfill(rt: Runtime, backfill_id: uuid.UUID) -> dict[str, Any] | None:
    """Return a backfill of the read model with its partitions."""
    async with rt.pool.acquire() as conn:
        return await rows.get(conn, backfill_id)


async def command_backfill(
    rt: Runtime, command: CancelBackfill | RetryBackfill, *, principal: str
) -> None:
    """Queue a CancelBackfill or RetryBackfill in the outbox."""
    action = "backfill.cancel" if isinstance(command, CancelBackfill) else "backfill.retry"
    async with rt.transaction() as conn:
        await queue(rt, conn, command, principal, action, str(command.backfill_id), {})


async def on_backfill_event(
    rt: Runtime, event: BackfillUpdated | BackfillRejected, consumer: str
) -> None:
    """Fold one backfill event into the read model, once."""
    async with rt.pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, consumer, event.message_id):
            return
        if isinstance(event, BackfillUpdated):
            await rows.updated(conn, event)
        else:
            await rows.rejected(conn, event)
