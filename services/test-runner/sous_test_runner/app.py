"""Composition root: `create_app(settings)` builds the runtime, the suite runner and subscribers."""

from __future__ import annotations

from functools import partial

from faststream import FastStream

from sous_common.logs import configure
from sous_common.migrate import load
from sous_common.runtime import Runtime
from sous_test_runner import handlers
from sous_test_runner.adapters import retention
from sous_test_runner.adapters.connections import PoolCache
from sous_test_runner.adapters.history import SeriesKey, recent_values
from sous_test_runner.service import Deps
from sous_test_runner.settings import TestRunnerSettings
from sous_test_runner.suite import SuiteRunner

SERVICE = "test-runner"


def build(settings: TestRunnerSettings) -> Deps:
    """Build the runtime and the suite runner, with the subscriber registered."""
    runtime = Runtime(
        SERVICE,
        settings.kafka,
        settings.database,
        schema=settings.db_schema,
        migrations=load(SERVICE, "sous_test_runner.migrations"),
        retention=retention.RULES,
        group_id=settings.group_id,
    )
    pools = PoolCache(
        size=settings.pools,
        pool_max=settings.pool_max,
        connect_timeout_s=settings.connect_timeout_s,
    )

    async def history(key: SeriesKey, last: int) -> list[float]:
        return await recent_values(runtime.pool, key, last)

    runner = SuiteRunner(
        pools,
        history,
        concurrency=settings.concurrency,
        suites=settings.suites,
        secrets_dir=settings.secrets_dir,
    )
    runtime.on_stopping(partial(pools.close))
    deps = Deps(runtime, runner)
    handlers.register(deps, consumers=settings.consumers, batch_max=settings.batch_max)
    return deps


def create_app(settings: TestRunnerSettings | None = None) -> FastStream:
    """Return the FastStream app (`faststream run --factory sous_test_runner.app:create_app`)."""
    settings = settings or TestRunnerSettings()
    configure(f"sous-{SERVICE}", level=settings.log_level)
    return build(settings).runtime.app()
