"""Settings of the console (`SOUS_CONSOLE_*`), beside the shared Kafka and database ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sous_common.settings import DatabaseSettings, KafkaSettings


class ConsoleSettings(BaseSettings):
    """How the console runs; Kafka and PostgreSQL come from `SOUS_KAFKA_*`/`SOUS_DATABASE_*`."""

    model_config = SettingsConfigDict(env_prefix="SOUS_CONSOLE_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    """Broker settings."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    """The console's own database (its read model)."""
    db_schema: str = "console"
    """Schema the console owns (`SOUS_CONSOLE_DB_SCHEMA`)."""
    group_id: str = ""
    """Consumer group (default: `<topic prefix>sous-console`)."""
    consumers: int = Field(default=3, ge=1)
    """Kafka consumers of the busy topics in this process (same group); each keeps its order."""
    registry_url: str = "http://127.0.0.1:8000"
    """The registry's REST API: sign-in checks and actions go there, as any client's would."""
    host: str = "127.0.0.1"
    """Address the web UI listens on."""
    port: int = 8090
    """Port of the web UI (`SOUS_CONSOLE_PORT`)."""
    secure_cookie: bool = False
    """Mark the sign-in cookie `Secure` (set behind HTTPS)."""
    principal_cache_s: float = Field(default=10.0, ge=0)
    """How long a checked token's principal is trusted before the registry is asked again."""
    log_level: str = "INFO"
    """Log level."""
