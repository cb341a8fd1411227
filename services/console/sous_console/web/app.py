"""The console's web app: hosts the read-model consumers and serves the views and live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sous_common.logs import configure
from sous_console.app import build
from sous_console.settings import ConsoleSettings
from sous_console.web import backfills, kitchens, views
from sous_console.web.auth import SignInNeeded
from sous_console.web.live import Hub
from sous_console.web.registry import Registry, RegistryError


def create_web(
    settings: ConsoleSettings | None = None,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Return the console: consumers, read model and web UI in one process.

    `registry_transport` reaches the registry without a network (tests host both in one
    process); by default the console calls `settings.registry_url`.
    """
    settings = settings or ConsoleSettings()
    runtime = build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry(
            settings.registry_url,
            cache_s=settings.principal_cache_s,
            transport=registry_transport,
        )
        hub = Hub(
            settings.database.url,
            connect_timeout_s=settings.database.connect_timeout_s,
            name=f"sous-console live {settings.db_schema}"[:63],
        )
        async with runtime.running():
            await hub.start()
            app.state.runtime, app.state.hub, app.state.registry = runtime, hub, registry
            app.state.settings = settings
            try:
                yield
            finally:
                await hub.stop()
                await registry.close()

    app = FastAPI(
        title="Sous console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry={"metrics": False, "logs": False},  # spans only, as the registry's
    )
    static = resources.files("sous_console.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.include_router(views.router)
    app.include_router(kitchens.router)
    app.include_router(backfills.router)

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next: Any) -> Response:
        # The cookie is SameSite=Strict already; a browser that says a form came from
        # another site (Sec-Fetch-Site, or an Origin that is not this host) is refused too.
        if request.method not in ("GET", "HEAD", "OPTIONS") and (why := cross_site(request)):
            return JSONResponse({"detail": why}, status_code=403)
        response: Response = await call_next(request)
        return response

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _exc: SignInNeeded) -> Response:
        if request.method == "GET" and request.url.path != "/events":
            return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "sign in first"}, status_code=401)

    @app.exception_handler(RegistryError)
    async def registry_refused(_request: Request, exc: RegistryError) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    return app


def cross_site(request: Request) -> str | None:
    """Return why a state-changing request is refused as cross-site, or None."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"refused: a {site} request may not act in the console"
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return "refused: the request comes from another origin"
    return None


def main() -> None:
    """Serve the console until interrupted (`python -m sous_console`)."""
    import uvicorn

    settings = ConsoleSettings()
    configure("sous-console", level=settings.log_level)
    uvicorn.run(create_web(settings), host=settings.host, port=settings.port, log_level="info")
