"""`sous backfill` and `sous backfills`: one run per partition of a range, over Kafka.

Exit codes of `sous backfill`: 0 succeeded, 1 failed, 3 cancelled, 4 refused, 2 usage.
"""

from __future__ import annotations

import json
import uuid

import typer
from rich.console import Console
from rich.markup import escape

from sous.registry_client import TokenOpt, UrlOpt, get_json
from sous.runs_cmd import _params, _target

console = Console()
err = Console(stderr=True)


def _backfill_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        err.print(f"[red]--cancel and --retry-failed name a BACKFILL_ID, got[/] {escape(text)!r}")
        raise typer.Exit(2) from None


def backfill(
    target: str = typer.Argument(
        help="DOMAIN/RECIPE, or a BACKFILL_ID with --cancel/--retry-failed"
    ),
    variation: str | None = typer.Option(None, "--variation", "-v"),
    kitchen: str | None = typer.Option(None, "--kitchen", "-k"),
    range_: str | None = typer.Option(
        None, "--range", help="PARAM=START..END, dates (2026-11-01) or integers, inclusive."
    ),
    step: str | None = typer.Option(None, "--step", help="1d, 7d, 2w for dates; an integer."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, max=100),
    downstream: bool = typer.Option(
        False, "--downstream", help="Let the runs' completions fire downstream triggers."
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value (JSON values ok)."),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel the backfill BACKFILL_ID."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Run the failed partitions of BACKFILL_ID again."
    ),
    reason: str = typer.Option("cancelled from the CLI", "--reason"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the progress to the end."),
    as_json: bool = typer.Option(False, "--json", help="Print each update as JSON."),
) -> None:
    """Run a recipe once per partition of a range, and show the progress until it ends."""
    from sous.kafka_io import publish
    from sous_contracts.backfills import (
        CancelBackfill,
        RangeError,
        RetryBackfill,
        StartBackfill,
        expand,
        parse_range,
    )
    from sous_contracts.envelope import Envelope, new_message_id

    command: Envelope
    if cancel or retry_failed:
        backfill_id = _backfill_id(target)
        title = f"backfill {backfill_id}"
        if cancel:
            command = CancelBackfill(producer="sous-cli", backfill_id=backfill_id, reason=reason)
        else:
            command = RetryBackfill(producer="sous-cli", backfill_id=backfill_id)
    else:
        domain, recipe = _target(target)
        if range_ is None:
            err.print(
                "[red]--range PARAM=START..END is needed[/] (like day=2026-11-01..2026-11-30)"
            )
            raise typer.Exit(2)
        try:
            rng = parse_range(range_, step)
        except RangeError as exc:
            err.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(2) from None
        backfill_id = new_message_id()
        command = StartBackfill(
            producer="sous-cli",
            backfill_id=backfill_id,
            domain=domain,
            recipe=recipe,
            variation=variation,
            kitchen=kitchen,
            params=_params(param),
            range=rng,
            concurrency=concurrency,
            downstream=downstream,
        )
        count = len(expand(rng))
        title = f"{domain}/{recipe} {rng.text()}"
        if not as_json:
            console.print(
                f"backfill {backfill_id}: {count} partitions of {escape(title)},"
                f" {concurrency} at a time"
            )
    if not wait:
        publish(command)
        typer.echo(json.dumps({"backfill_id": str(backfill_id)}) if as_json else str(backfill_id))
        return
    from sous.backfill_view import watch

    raise typer.Exit(watch(command, backfill_id, title, as_json))


def backfills(
    domain: str | None = typer.Option(None, "--domain"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """List the latest backfills with their progress (from the registry)."""
    from rich.table import Table

    found = get_json("/v1/backfills", url, token, domain=domain, limit=limit)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(title="backfills")
    for column in ("id", "recipe", "range", "status", "done", "failed", "running", "waiting"):
        table.add_column(column)
    for b in found:
        c, r = b.get("counts") or {}, b["range"]
        table.add_row(
            escape(str(b["backfill_id"])),
            escape(f"{b['domain']}/{b['recipe']}"),
            escape(f"{r['param']}={r['start']}..{r['end']}"),
            escape(b["status"]),
            *(str(c.get(k, 0)) for k in ("done", "failed", "running", "waiting")),
        )
    console.print(table)
