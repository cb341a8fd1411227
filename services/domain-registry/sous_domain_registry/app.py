"""Composition root: the runtime with the read model's subscribers, and the REST API on it."""

from __future__ import annotations

from faststream import FastStream

from sous_common.migrate import load
from sous_common.runtime import Runtime
from sous_common.trust import ANY_DOMAIN, Principal, load_signer
from sous_domain_registry import expiry, handlers, service
from sous_domain_registry.adapters import retention
from sous_domain_registry.adapters.trust import RegistryTrust
from sous_domain_registry.runs import PRINCIPAL
from sous_domain_registry.settings import RegistrySettings

SERVICE = "domain-registry"


def create_runtime(settings: RegistrySettings) -> Runtime:
    """Return the registry's runtime: broker, schema, migrations, subscribers."""
    signer = load_signer(
        PRINCIPAL, settings.signing_key_file, "SOUS_DOMAIN_REGISTRY_SIGNING_KEY_FILE"
    )
    rt = Runtime(
        service=SERVICE,
        kafka=settings.kafka,
        database=settings.database,
        schema=settings.schema_name,
        migrations=load(SERVICE, "sous_domain_registry.migrations"),
        retention=retention.RULES,
        signer=signer,
    )
    rt.guard.trust = RegistryTrust(rt)

    @rt.on_started
    async def publish_own_grant() -> None:
        # Consumers verify what the registry signs with the key its grant publishes.
        own = Principal(PRINCIPAL, {ANY_DOMAIN: ["admin"]}, (signer.public_key,))
        await service.bootstrap_grant(rt, own)

    handlers.register(rt)
    expiry.schedule(rt, settings.ttl_sweep_s)
    return rt


def create_app(settings: RegistrySettings | None = None) -> FastStream:
    """Return the FastStream app (consumers only; `serve` runs it with the REST API)."""
    return create_runtime(settings or RegistrySettings()).app()
