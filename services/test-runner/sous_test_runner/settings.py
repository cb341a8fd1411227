"""Settings of the test-runner (`SOUS_TEST_RUNNER_*`), beside the shared Kafka and database ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sous_common.settings import DatabaseSettings, KafkaSettings


class TestRunnerSettings(BaseSettings):
    """How the test-runner runs; Kafka and PostgreSQL come from `SOUS_KAFKA_*`/`SOUS_DATABASE_*`."""

    __test__ = False

    model_config = SettingsConfigDict(env_prefix="SOUS_TEST_RUNNER_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    """Broker settings."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    """The service's own database (inbox, outbox, test history)."""
    db_schema: str = "test_runner"
    """Schema the service owns (`SOUS_TEST_RUNNER_DB_SCHEMA`)."""
    group_id: str = ""
    """Consumer group of every replica (default: `<topic prefix>sous-test-runner`)."""
    consumers: int = Field(default=3, ge=1)
    """Kafka consumers in this process (same group); each handles its partitions in order."""
    batch_max: int = Field(default=50, ge=1)
    """Most RunTests a consumer takes at once: their suites run side by side and commit together."""
    concurrency: int = Field(default=8, ge=1)
    """Tests of one suite run at once."""
    suites: int = Field(default=4, ge=1)
    """Suites run at once in this process (of the batches its consumers took)."""
    secrets_dir: Path | None = None
    """Folder of the domains' secret files (`SOUS_TEST_RUNNER_SECRETS_DIR`): `secret:NAME` of a
    tested step is `<dir>/<domain>/<kitchen>/NAME`, else `<dir>/<domain>/NAME`."""
    pools: int = Field(default=16, ge=1)
    """Most connection pools to tested databases kept open (least recently used closed)."""
    pool_max: int = Field(default=4, ge=1)
    """Connections per tested database."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    """Deadline of opening a connection to a tested database."""
    log_level: str = "INFO"
    """Log level."""
