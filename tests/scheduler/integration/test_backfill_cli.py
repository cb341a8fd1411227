"""`sous backfill` as a person runs it: progress to the end, exit code = outcome, retry, cancel."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

from sous_common.trust import ANY_DOMAIN
from sous_contracts.common import StepStatus
from sous_contracts.registry import EntityKind
from sous_contracts.steps import ExecuteStep
from tests.scheduler.integration.conftest import publish_registry
from tests.scheduler.integration.test_backfills import DAILY
from tests.scheduler.standins import entity, standins
from tests.signing import ADMIN

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN_GRANT = entity(
    EntityKind.GRANT,
    "admin",
    {"principal": "admin", "scopes": {ANY_DOMAIN: ["admin"]}, "keys": [ADMIN.public_key]},
)


async def sous(kafka_settings, *args: str) -> tuple[int, str]:
    """Run the CLI as a program; return its exit code and what it printed."""
    env = {
        **os.environ,
        "SOUS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sous.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(90):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def backfill_id(out: str) -> str:
    found = re.search(r"backfill ([0-9a-f-]{36}):", out)
    assert found, out
    return found.group(1)


async def test_backfill_retry_and_cancel_from_the_cli(kafka_settings, scheduler) -> None:
    await publish_registry(kafka_settings, scheduler, [ADMIN_GRANT, DAILY])
    bad = {"2026-11-02"}

    def answer(step: ExecuteStep) -> StepStatus:
        return StepStatus.FAILED if step.params.get("day") in bad else StepStatus.SUCCEEDED

    async with standins(kafka_settings, answer=answer):
        rng = "day=2026-11-01..2026-11-03"
        code, out = await sous(
            kafka_settings,
            "backfill",
            "a/daily",
            "-v",
            "prod",
            "--range",
            rng,
            "--concurrency",
            "2",
        )
        assert code == 1, out
        assert "3 partitions of a/daily day=2026-11-01..2026-11-03, 2 at a time" in out
        assert "backfill failed (2 done · 1 failed · 0 running · 0 waiting)" in out
        first = backfill_id(out)
        bad.clear()
        code, out = await sous(kafka_settings, "backfill", first, "--retry-failed")
        assert code == 0, out
        assert "backfill succeeded (3 done · 0 failed · 0 running · 0 waiting)" in out
        code, out = await sous(kafka_settings, "backfill", first, "--cancel")
        assert code == 4, out
        assert f"refused: backfill {first} has ended (succeeded)" in out


async def test_bad_ranges_are_refused_before_anything_is_sent(kafka_settings) -> None:
    code, out = await sous(
        kafka_settings, "backfill", "a/daily", "--range", "day=2026-11-30..2026-11-01"
    )
    assert code == 2
    assert "range day=2026-11-30..2026-11-01: the end is before the start" in out
    code, out = await sous(kafka_settings, "backfill", "a/daily")
    assert code == 2
    assert "--range PARAM=START..END is needed" in out
    code, out = await sous(kafka_settings, "backfill", "not-an-id", "--cancel")
    assert code == 2
    assert "--cancel and --retry-failed name a BACKFILL_ID" in out
