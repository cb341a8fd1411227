"""Create the catalog's topics on a broker (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings
from sous_contracts.topics import CATALOG, Topic


async def ensure_topics(
    settings: KafkaSettings,
    *,
    topics: tuple[Topic, ...] = CATALOG,
    prefix: str | None = None,
    replication_factor: int = 1,
    partitions: int | None = None,
    counts: Mapping[str, int] | None = None,
) -> list[str]:
    """Create missing topics of the catalog; return the names it created.

    `partitions` overrides the catalog's counts (tests keep the broker small with it);
    `counts` overrides them per topic, by catalog name without prefix (a deployment's values).
    Existing topics are left as they are: Kafka only ever adds partitions, and adding them
    moves keys to other partitions, which an operator does on purpose, not a start-up.
    """
    counts = counts or {}
    unknown = sorted(set(counts) - {t.name for t in topics})
    if unknown:
        raise ValueError(f"not in the topic catalog: {', '.join(unknown)}")
    prefix = settings.topic_prefix if prefix is None else prefix
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=t.full_name(prefix),
                num_partitions=counts.get(t.name) or partitions or t.partitions,
                replication_factor=replication_factor,
                topic_configs=t.config(),
            )
            for t in topics
            if t.full_name(prefix) not in existing
        ]
        if new:
            await admin.create_topics(new, timeout_ms=settings.request_timeout_ms)
        return [t.name for t in new]
    finally:
        await admin.close()


async def delete_topics(settings: KafkaSettings, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix` (test clean-up)."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=settings.request_timeout_ms)
    finally:
        await admin.close()
