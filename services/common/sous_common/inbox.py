"""The inbox: exactly-once effects from at-least-once delivery (DESIGN §5.1).

Ids older than `SOUS_RETENTION_INBOX_DAYS` are purged by `sous_common.retention`.
"""

from __future__ import annotations

import uuid

from sous_common import metrics
from sous_common.db import AnyConnection


async def claim(conn: AnyConnection, consumer: str, message_id: uuid.UUID) -> bool:
    """Record that `consumer` handles `message_id`; False when it was handled before.

    Call inside the transaction that applies the message's effect, so the record and the
    effect commit together; on False, skip the effect and acknowledge the message.
    """
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        message_id,
    )
    if not inserted:
        metrics.duplicates(consumer)
    return bool(inserted)


async def claim_many(
    conn: AnyConnection, consumer: str, message_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """`claim()` for a batch in one round trip: return the ids not handled before."""
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING message_id",
        consumer,
        message_ids,
    )
    fresh = {r["message_id"] for r in rows}
    metrics.duplicates(consumer, len(set(message_ids)) - len(fresh))
    return fresh


async def seen(conn: AnyConnection, consumer: str, message_id: uuid.UUID) -> bool:
    """Return True when `consumer` already handled `message_id` (a cheap early check).

    Useful before slow work done outside the transaction; `claim()` stays the authority.
    """
    found = await conn.fetchval(
        "SELECT true FROM inbox WHERE consumer = $1 AND message_id = $2", consumer, message_id
    )
    if found:
        metrics.duplicates(consumer)  # the caller skips it: a duplicate skipped early
    return bool(found)


async def seen_many(
    conn: AnyConnection, consumer: str, message_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """`seen()` for a batch in one round trip: return the ids `consumer` handled before."""
    rows = await conn.fetch(
        "SELECT message_id FROM inbox WHERE consumer = $1 AND message_id = ANY($2::uuid[])",
        consumer,
        message_ids,
    )
    found = {r["message_id"] for r in rows}
    metrics.duplicates(consumer, len(found))
    return found
