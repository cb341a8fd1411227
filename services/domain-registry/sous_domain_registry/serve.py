"""Serve the REST API (and with it the consumers) with uvicorn."""

from __future__ import annotations

import uvicorn

from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings


def serve(settings: RegistrySettings | None = None) -> None:
    """Run until interrupted, on the configured host and port."""
    settings = settings or RegistrySettings()
    uvicorn.run(create_api(settings), host=settings.host, port=settings.port, log_level="info")
