"""The REST API (FastAPI) served in the same process as the registry's consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sous_common.runtime import Runtime
from sous_common.trust import Principal
from sous_domain_registry import service
from sous_domain_registry.api import backfills, catalog, datasets, kitchens, lineage, runs, security
from sous_domain_registry.api.limits import BodyLimits
from sous_domain_registry.app import create_runtime
from sous_domain_registry.domain.access import hash_token
from sous_domain_registry.settings import RegistrySettings


async def bootstrap_admin(rt: Runtime, settings: RegistrySettings) -> None:
    """Give principal `admin` every scope, its configured token (hashed) and public key."""
    if settings.admin_token is not None:
        token = settings.admin_token.get_secret_value()
        await service.set_grant(rt, "admin", {"*": ["admin"]}, hash_token(token), by="system")
    if settings.admin_public_key is not None:
        keys = (settings.admin_public_key,)
        await service.bootstrap_grant(rt, Principal("admin", {"*": ["admin"]}, keys))


def create_api(settings: RegistrySettings | None = None) -> FastAPI:
    """Return the REST API whose lifespan runs the registry's runtime."""
    settings = settings or RegistrySettings()
    rt = create_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with rt.running():
            await bootstrap_admin(rt, settings)
            app.state.runtime = rt
            yield

    api = FastAPI(
        title="Sous domain registry",
        version="1",
        description="The catalog of the mesh: specs as code, runs, events, kitchens.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans (a server span per call, continuing a caller's
        # traceparent) on the provider sous_common.tracing sets up; metrics and logs have
        # their own paths here (Prometheus, structlog).
        telemetry={"metrics": False, "logs": False},
    )

    api.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)

    @api.get("/v1/health", tags=["health"], summary="Liveness")
    async def health() -> dict[str, str]:
        """Return ok while the process serves."""
        return {"status": "ok"}

    api.include_router(catalog.router)
    api.include_router(runs.router)
    api.include_router(datasets.router)
    api.include_router(backfills.router)
    api.include_router(lineage.router)
    api.include_router(kitchens.router)
    api.include_router(security.router)
    return api
