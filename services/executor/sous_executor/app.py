"""Composition root: `faststream run --factory sous_executor.app:create_app`."""

from __future__ import annotations

from functools import partial

from faststream import FastStream

from sous_common import logs
from sous_common.migrate import load
from sous_common.runtime import Runtime, worker_id
from sous_common.settings import DatabaseSettings, KafkaSettings
from sous_executor import handlers, metrics, redaction
from sous_executor.adapters import retention
from sous_executor.adapters.cancel_listener import CancelListener
from sous_executor.service import Executor
from sous_executor.settings import ExecutorSettings


def build(
    settings: ExecutorSettings | None = None,
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
) -> tuple[Runtime, Executor]:
    """Build the runtime and the executor with its subscriber registered (tests use this)."""
    settings = settings or ExecutorSettings()
    runtime = Runtime(
        service="executor",
        kafka=kafka or KafkaSettings(),
        database=database or DatabaseSettings(),
        schema=settings.schema_name,
        migrations=load("executor", "sous_executor.migrations"),
        retention=retention.RULES,
    )
    executor = Executor(runtime, settings, settings.worker_id or worker_id("executor"))
    handlers.register(runtime, executor)
    listener = CancelListener(runtime.kafka, partial(executor.cancel, broadcast=True))
    runtime.on_opened(executor.start)
    runtime.on_scrape(partial(metrics.read, executor))
    runtime.on_started(listener.start)
    runtime.on_stopping(executor.stop)
    runtime.on_stopping(listener.stop)  # hooks run in reverse: the listener stops first
    return runtime, executor


def create_app(settings: ExecutorSettings | None = None) -> FastStream:
    """Return the executor application."""
    settings = settings or ExecutorSettings()
    logs.configure("executor", level=settings.log_level, json=settings.log_json)
    redaction.install()
    runtime, _ = build(settings)
    return runtime.app()
