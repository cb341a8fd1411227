"""Start the executor as a real process: `faststream run --factory sous_executor.app:create_app`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sous_common.settings import KafkaSettings


def start(
    kafka: KafkaSettings,
    database_url: str,
    schema: str,
    log: Path,
    *,
    extra_env: dict[str, str] | None = None,
    **executor_env: str,
) -> subprocess.Popen[bytes]:
    """Start one replica with its output (stdout and stderr) going to `log`."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "SOUS_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SOUS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SOUS_DATABASE_URL": database_url,
        "SOUS_EXECUTOR_SCHEMA_NAME": schema,
        **{f"SOUS_EXECUTOR_{k.upper()}": v for k, v in executor_env.items()},
    }
    faststream = Path(sys.executable).with_name("faststream")
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(faststream), "run", "--factory", "sous_executor.app:create_app"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
