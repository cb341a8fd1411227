"""Create the catalog's topics on a broker, or bring existing ones to its settings (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

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
    Existing topics keep their partition count: Kafka only ever adds partitions, and adding them
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


_DYNAMIC_TOPIC_CONFIG = 1
"""`config_source` of a setting made on the topic itself (not a broker default)."""


async def update_topic_configs(
    settings: KafkaSettings, *, topics: tuple[Topic, ...] = CATALOG, prefix: str | None = None
) -> dict[str, dict[str, str]]:
    """Bring existing topics' settings (retention, cleanup) to the catalog's.

    Settings made on a topic that the catalog does not name are kept. Return, per topic
    changed, the settings it changed; topics that do not exist are left to `ensure_topics`.
    """
    prefix = settings.topic_prefix if prefix is None else prefix
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {t.full_name(prefix): t.config() for t in topics}
        names = [name for name in wanted if name in existing]
        if not names:
            return {}
        current = await _dynamic_configs(admin, names)
        changes = {
            name: {k: v for k, v in wanted[name].items() if current[name].get(k) != v}
            for name in names
        }
        changes = {name: changed for name, changed in changes.items() if changed}
        if changes:
            # AlterConfigs replaces a topic's settings as a whole: send those it keeps too.
            responses = await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, name, configs={**current[name], **wanted[name]}
                    )
                    for name in changes
                ]
            )
            _raise_errors(responses, "alter the settings of")
        return changes
    finally:
        await admin.close()


async def _dynamic_configs(
    admin: AIOKafkaAdminClient, names: list[str]
) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    _raise_errors(responses, "read the settings of")
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {
                entry[0]: entry[1] for entry in entries if entry[3] == _DYNAMIC_TOPIC_CONFIG
            }
    return found


def _raise_errors(responses: list[object], doing: str) -> None:
    for response in responses:
        for code, message, _type, name, *_ in response.resources:  # type: ignore[attr-defined]
            if code:
                raise RuntimeError(f"could not {doing} topic {name}: error {code} {message or ''}")


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
