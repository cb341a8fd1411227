"""The scheduler's `sous_timers_due` gauge, read on a scrape with the scheduler's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ops import scrape, total
from tests.scheduler.integration.conftest import handled, publish_registry, recipe, run_scheduler
from tests.scheduler.integration.test_runs import start
from tests.scheduler.integration.test_schedules import Clock

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_timers_due_counts_what_the_clock_has_passed(kafka_settings, servers, schema) -> None:
    clock = Clock(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    # Timers are not fired here: the gauge is all that reads them.
    quiet = {"timer_poll_s": 3600, "cron_poll_s": 3600}
    async with run_scheduler(kafka_settings, servers, schema, clock, **quiet) as service:
        await publish_registry(
            kafka_settings, service, [recipe("a", "make", {"x": {"run": {"kind": "noop"}}})]
        )
        # Nobody answers the dispatch: its lease (20 s) stays set.
        await handled(service, [start("a", "make")])
        url = f"http://127.0.0.1:{service.rt.ops_port}"
        assert total(await scrape(url), "sous_timers_due") == 0
        clock.now += timedelta(seconds=21)
        assert total(await scrape(url), "sous_timers_due") == 1
