"""`sous datasets` and `sous dataset NAME`: who writes and reads a dataset, and its health."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sous.query_cmd import coloured
from sous.registry_client import TokenOpt, UrlOpt, get_json

console = Console()
KitchenOpt = typer.Option(None, "--kitchen", "-k", help="Only this kitchen.")
_HEALTH = {"passed": "green", "warning": "yellow", "failed": "red", "untested": "dim"}


def _health(value: str) -> Text:
    return Text(value, style=_HEALTH.get(value, ""))


def _tests(t: dict[str, int]) -> str:
    parts = [f"{t[k]} {k}" for k in ("passed", "failed", "warnings", "errors") if t.get(k)]
    return ", ".join(parts) or "-"


def _uses(title: str, uses: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("step", "kitchen", "last run", "status", "tests", "at"):
        table.add_column(column)
    for u in uses:
        table.add_row(
            escape(f"{u['domain']}/{u['recipe']}.{u['step']}"),
            escape(u["kitchen"]),
            u["last_run"],
            coloured(u["status"]),
            _tests(u["tests"]),
            u["at"][:19].replace("T", " "),
        )
    return table


def _monitors(monitors: list[dict[str, Any]]) -> Table:
    table = Table(title="monitors", title_justify="left")
    for column in ("monitor", "kitchen", "health", "tests", "last check", "at"):
        table.add_column(column)
    for m in monitors:
        failing = [t for t, outcome in m["results"].items() if outcome in ("failed", "error")]
        health = Text("passed", style="green") if m["passed"] else Text("failed", style="red")
        table.add_row(
            escape(f"{m['domain']}/{m['monitor']}"),
            escape(m["kitchen"]),
            health,
            escape(f"failing: {', '.join(failing)}" if failing else _tests(m["summary"])),
            m["last_check"],
            m["at"][:19].replace("T", " "),
        )
    return table


def dataset(
    name: str = typer.Argument(help="The dataset, e.g. finance.revenue."),
    kitchen: str | None = KitchenOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show who writes and reads a dataset, the last run that wrote it and its latest health."""
    found = get_json(f"/v1/datasets/{quote(name, safe='')}", url, token, kitchen=kitchen)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    head = Text.assemble((found["name"], "bold"), " health: ", _health(found["health"]))
    console.print(head)
    if found["last_written_by"]:
        console.print(f"last written by run {found['last_written_by']}")
    console.print(_uses("writers", found["writers"]))
    console.print(_uses("readers", found["readers"]))
    if found.get("monitors"):
        console.print(_monitors(found["monitors"]))


def datasets(
    kitchen: str | None = KitchenOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """List the datasets of the domains you may read, with their latest health."""
    rows = get_json("/v1/datasets", url, token, kitchen=kitchen)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no datasets")
        return
    table = Table()
    for column in ("dataset", "health", "last written by", "domains"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            _health(r["health"]),
            r["last_written_by"] or "-",
            escape(", ".join(r["domains"])),
        )
    console.print(table)
