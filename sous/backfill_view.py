"""What `sous backfill` shows while a backfill runs: a live progress bar, then its outcome."""

from __future__ import annotations

import asyncio
import uuid

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sous.kafka_io import follow, send
from sous.run_view import EXIT
from sous_common.settings import KafkaSettings
from sous_contracts.backfills import BackfillRejected, BackfillStatus, BackfillUpdated
from sous_contracts.envelope import Envelope
from sous_contracts.topics import RUN_EVENTS

console = Console()
err = Console(stderr=True)
REFUSED = 4
"""Exit code of a refused command, as `sous run --wait` has it."""


def counts_line(update: BackfillUpdated) -> str:
    """The counts beside the bar: done / failed / running / waiting (and cancelled)."""
    c = update.counts
    line = f"{c.done} done · {c.failed} failed · {c.running} running · {c.waiting} waiting"
    return line + (f" · {c.cancelled} cancelled" if c.cancelled else "")


def outcome(event: Envelope, backfill_id: uuid.UUID) -> int | None:
    """The exit code once `event` ends the backfill (or refuses the command), else None."""
    if getattr(event, "backfill_id", None) != backfill_id:
        return None
    if isinstance(event, BackfillRejected):
        err.print(f"[red]refused:[/] {escape(event.reason)}")
        return REFUSED
    if isinstance(event, BackfillUpdated) and event.status is not BackfillStatus.RUNNING:
        reason = f": {event.reason}" if event.reason else ""
        console.print(f"backfill {event.status}{escape(reason)} ({escape(counts_line(event))})")
        return EXIT[event.status.value]
    return None


def watch(command: Envelope, backfill_id: uuid.UUID, title: str, as_json: bool) -> int:
    """Send `command`, show the backfill's progress live, return the exit code of its end."""
    return asyncio.run(_watch(command, backfill_id, title, as_json))


async def _watch(command: Envelope, backfill_id: uuid.UUID, title: str, as_json: bool) -> int:
    settings = KafkaSettings()
    stream = follow(settings, [RUN_EVENTS], False)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.5)  # the follower is positioned at the end before we send
    await send(settings, command)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=as_json) as progress:
        bar = progress.add_task(escape(title), total=None, counts="waiting for the scheduler")
        event = await first
        while True:
            if isinstance(event, BackfillUpdated) and event.backfill_id == backfill_id:
                if as_json:
                    typer.echo(event.model_dump_json())
                ended = event.counts.done + event.counts.failed + event.counts.cancelled
                progress.update(
                    bar, total=event.counts.total, completed=ended, counts=counts_line(event)
                )
            if (code := outcome(event, backfill_id)) is not None:
                await stream.aclose()
                return code
            event = await anext(stream)
