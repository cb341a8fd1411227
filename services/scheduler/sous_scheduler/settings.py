"""Scheduler settings (`SOUS_SCHEDULER_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LineageSettings(BaseSettings):
    """Where OpenLineage events go (`SOUS_OPENLINEAGE_*`).

    `http` reads the client's own configuration (`OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`,
    `OPENLINEAGE__TRANSPORT__*`).
    """

    model_config = SettingsConfigDict(env_prefix="SOUS_OPENLINEAGE_", extra="ignore")

    transport: Literal["kafka", "http", "off"] = "kafka"
    """`kafka`: the `sous.lineage` topic; `http`: the openlineage-python client's transport
    (Marquez and others); `off`: no events."""
    namespace: str = "sous"
    """Prefix of job and dataset namespaces; the kitchen follows it (`sous.prod`)."""
    producer: str = "urn:sous:scheduler"
    """The `producer` URI the events carry."""


class SchedulerSettings(BaseSettings):
    """How the scheduler behaves; servers come from `SOUS_KAFKA_*` and `SOUS_DATABASE_*`."""

    model_config = SettingsConfigDict(env_prefix="SOUS_SCHEDULER_", extra="ignore")

    schema_name: str = "scheduler"
    """PostgreSQL schema the scheduler owns."""
    heartbeat_interval_s: float = 5.0
    """Heartbeat interval asked of executors."""
    lease_factor: float = 3.0
    """Missed heartbeats before an executor counts as lost."""
    dispatch_lease_s: float = 30.0
    """How long a dispatched step may wait for an executor to start it."""
    timer_poll_s: float = 0.2
    """How often due timers are looked for."""
    cron_poll_s: float = 1.0
    """How often schedules are looked at."""
    consumers: int = 3
    """Consumers of the order-run commands in this process; each takes its own partitions in
    batches, so runs on different partitions are started side by side while each keeps its
    order."""
    batch_max: int = 500
    """Most order-run commands, completion, step or test events applied in one transaction."""
    mark_interval_s: float = 1.0
    """How often every partition of the step events gets a read mark; a lease expires at
    most about this much after its deadline. Marks further apart than three intervals mean
    they could not be written (the broker was away): every lease then gets a whole lease
    from that moment (`domain/leases.py`)."""
    max_causation_depth: int = 10
    """Trigger hops allowed unless a trigger sets its own `max_depth`."""
    openlineage: LineageSettings = Field(default_factory=LineageSettings)
    """OpenLineage events (their own `SOUS_OPENLINEAGE_*` variables)."""
    signing_key_file: Path | None = None
    """The scheduler's Ed25519 private key (PEM), which signs the runs it starts and the
    completions it publishes; required. `sous keys new FILE` creates one."""
