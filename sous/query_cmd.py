"""`sous runs`, `sous status` and `sous logs`: read the registry's runs.

Exit codes: 0 done, 1 not found, 2 usage or connection error; `status` reports the run's own
outcome as 0 succeeded, 1 failed or rejected, 3 cancelled, 5 not finished yet.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sous.registry_client import TokenOpt, UrlOpt, err, get_json

console = Console()
COLOURS = {
    "succeeded": "green",
    "passed": "green",
    "failed": "red",
    "rejected": "red",
    "join-expired": "yellow",
    "held": "yellow",
    "deduplicated": "dim",
    "error": "red",
    "timed_out": "red",
    "cancelled": "magenta",
    "warning": "yellow",
    "running": "cyan",
    "queued": "blue",
    "requested": "blue",
    "log": "dim",
}
EXIT_CODES = {"succeeded": 0, "failed": 1, "rejected": 1, "join-expired": 1, "cancelled": 3}
STILL_RUNNING = 5


def coloured(status: str | None) -> Text:
    """Return a status in its colour."""
    return Text(status or "-", style=COLOURS.get(status or "", ""))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def started(row: dict[str, Any]) -> str:
    """Return when a run or step started, as `YYYY-MM-DD HH:MM:SS` UTC (or `-`)."""
    at = _time(row.get("started_at"))
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def duration(row: dict[str, Any], now: datetime | None = None) -> str:
    """Return how long a run or step took (or has taken so far), e.g. `1m05s`."""
    start, end = _time(row.get("started_at")), _time(row.get("finished_at"))
    if start is None:
        return "-"
    seconds = ((end or now or datetime.now(UTC)) - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def tests_summary(tests: dict[str, Any] | None) -> str:
    """Return `passed/failed/warnings` of a run's test counts."""
    t = tests or {}
    return f"{t.get('passed', 0)}/{t.get('failed', 0) + t.get('errors', 0)}/{t.get('warnings', 0)}"


def runs_table(rows: list[dict[str, Any]], now: datetime | None = None) -> Table:
    """Return the table of runs that `sous runs` prints."""
    table = Table("run", "domain/recipe", "variation", "kitchen", "status", "started", "took")
    table.add_column("tests p/f/w", justify="right")
    for r in rows:
        table.add_row(
            Text(str(r["order_run_id"]), no_wrap=True),
            f"{r.get('domain') or '?'}/{r.get('recipe') or '?'}",
            r.get("variation") or "-",
            r.get("kitchen") or "-",
            coloured(r.get("status")),
            started(r),
            duration(r, now),
            tests_summary(r.get("tests")),
        )
    return table


def steps_table(run: dict[str, Any], now: datetime | None = None) -> Table:
    """Return the table of a run's step attempts."""
    table = Table("step", "attempt", "status", "started", "took", "reason", title="steps")
    for s in run.get("steps", []):
        table.add_row(
            s["step"],
            str(s["attempt"]),
            coloured(s["status"]),
            started(s),
            duration(s, now),
            Text(s.get("reason") or ""),
        )
    return table


def tests_table(run: dict[str, Any]) -> Table:
    """Return the table of a run's test results."""
    table = Table("step", "test", "kind", "severity", "status", "message", title="tests")
    for t in run.get("test_results", []):
        cells = [Text(t[k]) for k in ("step", "test", "kind", "severity")]
        table.add_row(*cells, coloured(t["status"]), Text(t["message"]))
    return table


def exit_code(status: str | None) -> int:
    """Return the exit code of `sous status` for a run status."""
    return EXIT_CODES.get(status or "", STILL_RUNNING)


def runs(
    domain: str | None = typer.Option(None, "--domain", help="Only this domain."),
    recipe: str | None = typer.Option(None, "--recipe", help="Only this recipe."),
    kitchen: str | None = typer.Option(None, "--kitchen", help="Only this kitchen."),
    limit: int = typer.Option(20, "--limit", min=1, max=500, help="How many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show the latest runs, newest first."""
    rows = get_json(
        "/v1/runs", url, token, domain=domain, recipe=recipe, kitchen=kitchen, limit=limit
    )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        console.print("no runs")
    else:
        console.print(runs_table(rows))


def _find(run_id: str, url: str | None, token: str | None) -> dict[str, Any]:
    try:
        uuid.UUID(run_id)
    except ValueError:
        err.print(f"[red]not a run id:[/] {run_id}")
        raise typer.Exit(2) from None
    found: dict[str, Any] = get_json(f"/v1/runs/{run_id}", url, token)
    return found


def status(
    run_id: Annotated[str, typer.Argument(help="The order run id.")],
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show one run with its steps and tests; the exit code tells how it ended."""
    run = _find(run_id, url, token)
    if as_json:
        typer.echo(json.dumps(run, indent=2))
    else:
        head = f"{run.get('domain')}/{run.get('recipe')} [{run.get('variation')}]"
        line = Text.assemble((head, "bold"), f" in {run.get('kitchen')}: ")
        console.print(line + coloured(run.get("status")))
        if run.get("reason"):
            console.print(f"reason: {escape(run['reason'])}")
        console.print(f"started {started(run)}, took {duration(run)}")
        console.print(steps_table(run))
        if run.get("test_results"):
            console.print(tests_table(run))
    raise typer.Exit(exit_code(run.get("status")))


def logs(
    run_id: Annotated[str, typer.Argument(help="The order run id.")],
    step: str | None = typer.Option(None, "--step", help="Only this step."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Print the end of each step attempt's log (what the executor kept, secrets redacted)."""
    run = _find(run_id, url, token)
    attempts = [s for s in run.get("steps", []) if step is None or s["step"] == step]
    if step is not None and not attempts:
        err.print(f"[red]no step {step} in run[/] {run_id}")
        raise typer.Exit(1)
    for s in attempts:
        console.rule(escape(f"{s['step']} · attempt {s['attempt']} · {s['status']}"))
        tail = s.get("log_tail")
        if tail:
            console.out(tail, highlight=False)
        elif s["status"] == "running":
            console.print("[dim](still running; the log tail arrives when the attempt ends)[/]")
        elif "log_tail" not in s:
            console.print("[dim](this registry keeps no step logs; see the executor's log)[/]")
        else:
            console.print("[dim](the step logged nothing)[/]")
