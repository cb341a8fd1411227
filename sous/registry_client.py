"""A small client of the domain registry's REST API shared by the `sous` commands.

Exit codes of its failures: 1 refused or not found, 2 usage or connection error.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import httpx

err = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8470"
UrlOpt = typer.Option(None, "--url", help="Registry URL (SOUS_REGISTRY_URL).")
TokenOpt = typer.Option(None, "--token", help="Bearer token (SOUS_TOKEN).")


def address(url: str | None) -> str:
    """Return the registry's address: `url`, else SOUS_REGISTRY_URL, else the local default."""
    return url or os.environ.get("SOUS_REGISTRY_URL", DEFAULT_URL)


def client(url: str | None, token: str | None) -> httpx.Client:
    """Return an HTTP client of the registry at `address(url)` with the token."""
    import httpx  # here, not at the top: `sous --help` needs no HTTP client

    token = token or os.environ.get("SOUS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=address(url), headers=headers, timeout=30.0)


def call(method: str, route: str, url: str | None, token: str | None, **kw: Any) -> httpx.Response:
    """Send one request; exit 2 with one red line when the registry cannot be reached."""
    import httpx

    try:
        with client(url, token) as c:
            return c.request(method, route, **kw)
    except httpx.HTTPError as exc:
        where = escape(address(url))
        err.print(f"[red]cannot reach the registry at {where}:[/] {escape(str(exc))}")
        err.print("Is it running? `sous up` starts one; --url or SOUS_REGISTRY_URL names another.")
        raise typer.Exit(2) from exc


def fail(r: httpx.Response) -> None:
    """Print why the registry said no, and exit with the matching code."""
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text}
    if not isinstance(body, dict):
        body = {"detail": str(body)}
    for line in body.get("errors", []):
        err.print(f"[red]✗[/] {escape(str(line))}")
    detail = body.get("detail")
    if detail and not body.get("errors"):
        err.print(f"[red]{r.status_code}[/] {escape(str(detail))}")
    raise typer.Exit(1 if r.status_code in (404, 409, 422) else 2)


def get_json(route: str, url: str | None, token: str | None, **params: Any) -> Any:
    """GET a route and return its JSON body, or fail like `fail`."""
    query = {k: v for k, v in params.items() if v is not None}
    r = call("GET", route, url, token, params=query)
    if r.status_code != 200:
        fail(r)
    return r.json()
