"""Composition root: the runtime with the read model's subscribers, and the REST API on it."""

from __future__ import annotations

from faststream import FastStream

from sous_common.migrate import load
from sous_common.runtime import Runtime
from sous_domain_registry import expiry, handlers
from sous_domain_registry.settings import RegistrySettings

SERVICE = "domain-registry"


def create_runtime(settings: RegistrySettings) -> Runtime:
    """Return the registry's runtime: broker, schema, migrations, subscribers."""
    rt = Runtime(
        service=SERVICE,
        kafka=settings.kafka,
        database=settings.database,
        schema=settings.schema_name,
        migrations=load(SERVICE, "sous_domain_registry.migrations"),
    )
    handlers.register(rt)
    expiry.schedule(rt, settings.ttl_sweep_s)
    return rt


def create_app(settings: RegistrySettings | None = None) -> FastStream:
    """Return the FastStream app (consumers only; `serve` runs it with the REST API)."""
    return create_runtime(settings or RegistrySettings()).app()
