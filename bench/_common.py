"""Helpers the benchmarks share: servers from the environment, fresh names, percentiles, output."""

from __future__ import annotations

import json
import os
import statistics
import sys
import uuid
from typing import Any

from sous_common.settings import DatabaseSettings, KafkaSettings


def kafka_settings() -> KafkaSettings:
    """Settings for the broker in SOUS_KAFKA_BOOTSTRAP with a fresh topic prefix."""
    if not os.environ.get("SOUS_KAFKA_BOOTSTRAP"):
        sys.exit("set SOUS_KAFKA_BOOTSTRAP (make bench does it)")
    return KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")


def database_settings() -> DatabaseSettings:
    """Settings for the server in SOUS_DATABASE_URL."""
    if not os.environ.get("SOUS_DATABASE_URL"):
        sys.exit("set SOUS_DATABASE_URL (make bench does it)")
    return DatabaseSettings()


def fresh_schema() -> str:
    """A schema name of its own."""
    return f"bench_{uuid.uuid4().hex[:8]}"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of a list of milliseconds."""
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 3),
        "p90_ms": round(cuts[89], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(max(samples_ms), 3),
    }


def emit(bench: str, **figures: Any) -> None:
    """Print one JSON line for one figure."""
    print(json.dumps({"bench": bench, **figures}), flush=True)
