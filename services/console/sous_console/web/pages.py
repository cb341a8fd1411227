"""What every view module shares: the templates, rendering a page, the app's runtime."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sous_common.runtime import Runtime
from sous_common.trust import Principal

templates = Jinja2Templates(directory=str(resources.files("sous_console.web") / "templates"))


def runtime(request: Request) -> Runtime:
    """Return the console's runtime (set by the app's lifespan)."""
    rt: Runtime = request.app.state.runtime
    return rt


def render(
    request: Request,
    name: str,
    who: Principal | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render template `name` for `who` (None: signed out); the view is named after it."""
    return templates.TemplateResponse(
        request,
        name,
        {"who": who, "view": name.removesuffix(".html"), **context},
        status_code=status_code,
    )
