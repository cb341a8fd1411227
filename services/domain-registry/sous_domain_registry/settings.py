"""Settings of the domain registry (`SOUS_DOMAIN_REGISTRY_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sous_common.settings import DatabaseSettings, KafkaSettings


class RegistrySettings(BaseSettings):
    """Where the registry listens, its schema, and the bootstrap admin token."""

    model_config = SettingsConfigDict(env_prefix="SOUS_DOMAIN_REGISTRY_", extra="ignore")

    host: str = "127.0.0.1"
    """Address the REST API binds to."""
    port: int = 8470
    """Port of the REST API."""
    schema_name: str = "domain_registry"
    """PostgreSQL schema the registry owns."""
    admin_token: SecretStr | None = None
    """Bootstrap token of principal `admin` with every scope; stored hashed at start-up."""
    admin_public_key: str | None = None
    """A public key (base64 Ed25519) of principal `admin`, published with its grant at
    start-up, so the admin's CLI can sign the commands it sends on Kafka."""
    signing_key_file: Path | None = None
    """The registry's Ed25519 private key (PEM), which signs what it sends (runs started over
    REST among them); required. `sous keys new FILE` creates one."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Largest REST request body (a whole spec folder for apply); larger ones get 413."""
    ttl_sweep_s: float = Field(default=30.0, gt=0)
    """How often sandboxes past their time to live are torn down and deleted."""
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    """Broker connection (`SOUS_KAFKA_*`)."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    """Database connection (`SOUS_DATABASE_*`)."""
