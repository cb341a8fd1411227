"""Composition root: the runtime with the read-model consumers, and the web app hosting it."""

from __future__ import annotations

from sous_common.migrate import load
from sous_common.runtime import Runtime
from sous_console import handlers
from sous_console.adapters import retention
from sous_console.settings import ConsoleSettings

SERVICE = "console"


def build(settings: ConsoleSettings) -> Runtime:
    """Build the runtime with the console's subscribers registered."""
    runtime = Runtime(
        SERVICE,
        settings.kafka,
        settings.database,
        schema=settings.db_schema,
        migrations=load(SERVICE, "sous_console.migrations"),
        retention=retention.RULES,
        group_id=settings.group_id,
    )
    handlers.register(runtime, consumers=settings.consumers)
    return runtime
