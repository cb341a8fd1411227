"""`sous apply` and `sous kitchen`: talk to the domain registry's REST API.

Exit codes: 0 done, 1 refused by the registry, 2 usage or connection error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sous.registry_client import call, err, fail

console = Console()
kitchen_app = typer.Typer(no_args_is_help=True, help="Kitchens: sandboxes made from a parent.")

SPEC_SUFFIXES = (".yaml", ".yml", ".sql")


def collect(path: Path) -> dict[str, str]:
    """Return mesh-relative path → text of the spec and SQL files under `path`.

    `path` is the mesh root, or one domain folder (it holds `domain.yaml`).
    """
    root = path.parent if (path / "domain.yaml").is_file() else path
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and p.suffix in SPEC_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def apply(
    path: Annotated[Path, typer.Argument(help="Mesh root or one domain folder.")],
    kitchen: str | None = typer.Option(None, "--kitchen", help="Apply into this kitchen."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change; change nothing."
    ),
    url: str | None = typer.Option(None, "--url", help="Registry URL (SOUS_REGISTRY_URL)."),
    token: str | None = typer.Option(None, "--token", help="Bearer token (SOUS_TOKEN)."),
) -> None:
    """Apply a folder of domain specs to the registry, all or nothing."""
    if not path.is_dir():
        err.print(f"[red]not a folder:[/] {path}")
        raise typer.Exit(2)
    files = collect(path)
    if not files:
        err.print(f"[red]no spec files under[/] {path}")
        raise typer.Exit(2)
    body = {"files": files, "kitchen": kitchen, "dry_run": dry_run}
    r = call("POST", "/v1/apply", url, token, json=body)
    if r.status_code != 200:
        fail(r)
    result = r.json()
    if not result["changes"]:
        console.print("[green]no changes[/]")
        return
    table = Table("action", "entity", "version")
    colours = {"create": "green", "update": "yellow", "delete": "red"}
    for c in result["changes"]:
        version = (c["new_version"] or c["old_version"] or "")[:19]
        table.add_row(f"[{colours[c['action']]}]{c['action']}[/]", c["entity_id"], version)
    console.print(table)
    if result["affected_domains"]:
        console.print("downstream domains affected: " + ", ".join(result["affected_domains"]))
    verb = "would change" if dry_run else "changed"
    console.print(f"[bold]{len(result['changes'])} entities {verb}[/]")


@kitchen_app.command("create")
def kitchen_create(
    name: Annotated[str, typer.Argument(help="New kitchen, e.g. dev-alice.")],
    parent: str = typer.Option(..., "--from", help="Parent kitchen."),
    ttl: str | None = typer.Option(None, "--ttl", help="Lifetime such as 2d."),
    provision: str | None = typer.Option(None, "--provision", help="Recipe domain/name."),
    teardown: str | None = typer.Option(None, "--teardown", help="Recipe domain/name."),
    url: str | None = typer.Option(None, "--url", help="Registry URL (SOUS_REGISTRY_URL)."),
    token: str | None = typer.Option(None, "--token", help="Bearer token (SOUS_TOKEN)."),
) -> None:
    """Create a sandbox kitchen from a parent."""
    body = {"name": name, "from": parent, "ttl": ttl, "provision": provision, "teardown": teardown}
    r = call("POST", "/v1/kitchens", url, token, json=body)
    if r.status_code != 201:
        fail(r)
    console.print(f"[green]kitchen {name} created[/] from {parent}")


@kitchen_app.command("delete")
def kitchen_delete(
    name: Annotated[str, typer.Argument(help="Kitchen to delete.")],
    url: str | None = typer.Option(None, "--url", help="Registry URL (SOUS_REGISTRY_URL)."),
    token: str | None = typer.Option(None, "--token", help="Bearer token (SOUS_TOKEN)."),
) -> None:
    """Delete a kitchen (its teardown recipe runs first)."""
    r = call("DELETE", f"/v1/kitchens/{name}", url, token)
    if r.status_code != 204:
        fail(r)
    console.print(f"[green]kitchen {name} deleted[/]")


@kitchen_app.command("merge")
def kitchen_merge(
    name: Annotated[str, typer.Argument(help="Sandbox to merge into its parent.")],
    url: str | None = typer.Option(None, "--url", help="Registry URL (SOUS_REGISTRY_URL)."),
    token: str | None = typer.Option(None, "--token", help="Bearer token (SOUS_TOKEN)."),
) -> None:
    """Merge a sandbox into its parent (refused until each recipe it changed passed a run)."""
    r = call("POST", f"/v1/kitchens/{name}/merge", url, token)
    if r.status_code != 200:
        fail(r)
    console.print(f"[green]kitchen {name} merged[/] into {r.json()['parent']}")
