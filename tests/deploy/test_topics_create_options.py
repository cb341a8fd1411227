"""`sous topics create --partitions TOPIC=N`: what the chart's topics Job runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sous.cli import app
from sous_common.settings import KafkaSettings
from sous_common.topic_admin import ensure_topics

NO_BROKER = "127.0.0.1:1"


def test_a_partition_count_for_a_topic_outside_the_catalog_is_refused() -> None:
    settings = KafkaSettings(bootstrap=NO_BROKER)
    with pytest.raises(ValueError, match=r"not in the topic catalog: sous\.nope"):
        asyncio.run(ensure_topics(settings, counts={"sous.nope": 3}))


@pytest.mark.parametrize("given", ["sous.commands.step", "sous.commands.step=0", "x=y"])
def test_a_malformed_partitions_option_is_refused_before_any_connection(given: str) -> None:
    result = CliRunner().invoke(
        app, ["topics", "create", "--partitions", given], env={"SOUS_KAFKA_BOOTSTRAP": NO_BROKER}
    )
    assert isinstance(result.exception, ValueError)
    assert "expected TOPIC=N with N >= 1" in str(result.exception)


def test_the_cli_exits_2_with_one_line_saying_why() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sous.cli", "topics", "create", "--partitions", "sous.dlq=x"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "SOUS_KAFKA_BOOTSTRAP": NO_BROKER},
    )
    assert done.returncode == 2
    assert "expected TOPIC=N with N >= 1" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
