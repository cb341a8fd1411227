"""`sous purge`: apply (or preview) every service's retention now, on its PostgreSQL schema.

The services purge by themselves on a durable timer (`SOUS_RETENTION_*`); this command does
what the next timer would do, at once, with the same rules and settings, or with `--dry-run`
counts the rows that would go without deleting any.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sous_common.retention import Outcome

console = Console()

SERVICES: dict[str, str] = {
    "domain-registry": "sous_domain_registry.adapters.retention",
    "scheduler": "sous_scheduler.adapters.retention",
    "executor": "sous_executor.adapters.retention",
    "test-runner": "sous_test_runner.adapters.retention",
    "console": "sous_console.adapters.retention",
}
"""Each service and the module of its adapters that declares its retention rules."""


@dataclass(frozen=True)
class Line:
    """One line of the report: a service's kind of record and its rows."""

    service: str
    schema: str
    record: str
    kept_days: float
    rows: int | None
    """Rows purged (or that would be); None when another replica was purging."""


async def _service(name: str, *, dry_run: bool) -> list[Line]:
    import importlib

    from sous_common.db import create_pool
    from sous_common.retention import COMMON_RULES, Purger, RetentionSettings
    from sous_common.settings import DatabaseSettings

    rules = importlib.import_module(SERVICES[name])
    schema: str = rules.schema_name()
    pool = await create_pool(DatabaseSettings(), schema=schema, application="sous-purge")
    try:
        if not await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.inbox"):
            return []  # that service never ran against this database
        purger = Purger(
            pool, schema=schema, rules=COMMON_RULES + rules.RULES, settings=RetentionSettings()
        )
        outcomes: list[Outcome] | None = await purger.preview() if dry_run else await purger.purge()
        if outcomes is None:
            return [Line(name, schema, "*", 0, None)]
        return [Line(name, schema, o.name, o.days, o.rows) for o in outcomes]
    finally:
        await pool.close()


async def _all(names: list[str], *, dry_run: bool) -> list[Line]:
    lines: list[Line] = []
    for name in names:
        lines += await _service(name, dry_run=dry_run)
    return lines


def purge(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would be purged; delete nothing."
    ),
    service: list[str] = typer.Option(
        [], "--service", "-s", help="Only this service (repeatable); every service by default."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Purge records older than their retention (`SOUS_RETENTION_*`), or preview it."""
    unknown = sorted(set(service) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown service {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    import asyncio  # here, as every import a command needs: `sous --help` stays fast

    lines = asyncio.run(_all(service or list(SERVICES), dry_run=dry_run))
    if as_json:
        import json

        for line in lines:
            typer.echo(json.dumps(asdict(line)))
        return
    from rich.table import Table

    verb = "would go" if dry_run else "purged"
    table = Table("service", "schema", "record", "kept", verb)
    for line in lines:
        kept = f"{line.kept_days:g} days" if line.kept_days else "forever"
        rows = str(line.rows)
        if line.rows is None:
            kept, rows = "", "busy: a replica is purging"
        table.add_row(line.service, line.schema, line.record, kept, rows)
    console.print(table)
    if not lines:
        console.print("no service schema found in this database")
