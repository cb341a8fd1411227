"""Connection settings services read from the environment (`SOUS_KAFKA_*`, `SOUS_DATABASE_*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Where the broker is and how to reach it; SASL/TLS settings are passed through."""

    model_config = SettingsConfigDict(env_prefix="SOUS_KAFKA_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    """Comma-separated bootstrap servers (`SOUS_KAFKA_BOOTSTRAP`)."""
    topic_prefix: str = ""
    """Prefix put in front of every catalog topic, e.g. `staging.`."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Security protocol."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism when the protocol is SASL_*."""
    sasl_username: str | None = None
    """SASL user."""
    sasl_password: SecretStr | None = None
    """SASL password."""
    ssl_cafile: str | None = None
    """CA bundle for TLS."""
    ssl_certfile: str | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: str | None = None
    """Client key for mutual TLS."""
    request_timeout_ms: int = 15_000
    """Deadline of every produce, fetch and metadata request."""
    linger_ms: int = 0
    """How long a producer holds a record back for a fuller batch. Batches form anyway while
    a request is in flight, so 0: at 1 ms a hop took 1.4 ms longer (DESIGN §6)."""
    max_message_bytes: int = 1_000_000
    """Largest message a consumer accepts; larger ones go to the dead-letter topic."""
    startup_wait_s: float = 300.0
    """How long a starting service waits for the broker to come up before it gives up."""
    batch_wait_ms: int = 500
    """How long a quiet batch consumer waits for a record before it looks again. A record that
    arrives is taken at once, whatever this is (see `subscribing.read_batch`): it bounds only
    how often an idle consumer wakes up."""
    fetch_max_wait_ms: int = 100
    """How long the broker holds a consumer's fetch when none of its partitions has data.
    While a fetch is out, a partition whose records were just taken is not in it (aiokafka,
    like Kafka's Java client, fetches only partitions with nothing waiting), so a record
    arriving there next waits up to this for the fetch to come back: a bound on a hop's
    latency at the tail. Lower costs an idle consumer more fetches a second."""
    heartbeat_interval_ms: int = 200
    """How often a consumer tells its group it is alive. A member learns that its group
    rebalances (a replica or a consumer of the same process joins or leaves) only from a
    heartbeat's answer, so this bounds each rebalance: at Kafka's usual 3 s, a service whose
    consumers join one by one is ready only after several seconds."""


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL is (`SOUS_DATABASE_URL`) and the pool's limits."""

    model_config = SettingsConfigDict(env_prefix="SOUS_DATABASE_", extra="ignore")

    url: str = "postgresql://postgres@127.0.0.1:5432/sous"
    """asyncpg DSN."""
    pool_min: int = 1
    """Connections kept open."""
    pool_max: int = 10
    """Most connections at once."""
    command_timeout_s: float = 30.0
    """Deadline of every query."""
    connect_timeout_s: float = 10.0
    """Deadline of opening a connection."""
    startup_wait_s: float = 300.0
    """How long a starting service waits for PostgreSQL to come up before it gives up."""


class OpsSettings(BaseSettings):
    """The ops endpoint: `/healthz`, `/readyz` and `/metrics` (`SOUS_OPS_*`)."""

    model_config = SettingsConfigDict(env_prefix="SOUS_OPS_", extra="ignore")

    port: int = 9400
    """Port of the ops endpoint; 0 picks a free one (logged as `ops endpoint listening`)."""
    host: str = "0.0.0.0"  # probes and scrapers come from outside the pod
    """Address the ops endpoint listens on."""
    enabled: bool = True
    """False serves no ops endpoint (an embedding host serves its own)."""
    probe_timeout_s: float = 2.0
    """Deadline of the checks behind one `/readyz` or `/metrics` answer."""
