"""`sous kitchen list` and `sous kitchen versions`: what the registry holds about kitchens.

Exit codes: 0 done, 1 unknown kitchen, 2 usage or connection error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sous.registry_client import TokenOpt, UrlOpt, get_json

console = Console()
SHORT = 19
"""Characters of a version shown in a table, as `sous apply` shows them."""
UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def lifetime(seconds: float | None) -> str:
    """Return a kitchen's ttl as specs write it (`7d`, `8h`, `90m`), or `-` for none."""
    if seconds is None:
        return "-"
    for unit, size in UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def kitchen_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show every kitchen with its parent and lifetime."""
    rows = get_json("/v1/kitchens", url, token)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("kitchen", "parent", "ttl", "description")
    for k in rows:
        spec = k["spec"]
        table.add_row(
            k["name"],
            spec.get("parent") or "-",
            lifetime(spec.get("ttl")),
            Text(spec.get("description") or ""),
        )
    console.print(table)


def version_row(v: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """Return one applied recipe version as table cells: recipe, version, base, when, who."""
    applied = datetime.fromisoformat(v["applied_at"]).astimezone(UTC)
    return (
        f"{v['domain']}/{v['recipe']}",
        v["version"][:SHORT],
        (v["base_version"] or "new recipe")[:SHORT],
        applied.strftime("%Y-%m-%d %H:%M:%S"),
        v["applied_by"] or "-",
    )


def kitchen_versions(
    kitchen: Annotated[str, typer.Argument(help="Kitchen, e.g. dev-alice.")],
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show the recipe versions applied into a kitchen and the base versions they replace.

    Only the kitchen's own versions: those it inherits from its parent are not listed.
    """
    rows = get_json(f"/v1/kitchens/{kitchen}/versions", url, token)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"kitchen {kitchen} has no recipe versions of its own")
        return
    table = Table("recipe", "version", "replaces base", "applied (UTC)", "by")
    for v in rows:
        table.add_row(*version_row(v))
    console.print(table)
