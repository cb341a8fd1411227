"""What `sous run --wait` and `sous tail` show of a run's events: text, never markup."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sous.kafka_io import follow, send
from sous_common.settings import KafkaSettings
from sous_contracts.envelope import Envelope
from sous_contracts.runs import (
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunRejected,
    StartOrderRun,
)
from sous_contracts.steps import ExecuteStep, StepFinished, StepSkipped, StepStarted
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import RUN_EVENTS, STEP_COMMANDS, STEP_EVENTS, TEST_RESULTS

console = Console()
err = Console(stderr=True)
EXIT = {"succeeded": 0, "failed": 1, "cancelled": 3}
"""Exit codes of `sous run --wait`: 0 succeeded, 1 failed, 3 cancelled, 4 refused."""
COLOURS = {"passed": "green", "failed": "red", "error": "red", "warning": "yellow", "log": "dim"}
"""Colour of each test outcome; the text next to it comes from events and is never markup."""


def watch(command: StartOrderRun, as_json: bool) -> int:
    """Send `command`, show its run live, and return the exit code of its outcome."""
    return asyncio.run(_watch(command, as_json))


async def _watch(command: StartOrderRun, as_json: bool) -> int:
    settings = KafkaSettings()
    rows: dict[str, list[str]] = {}
    tests: list[Text] = []

    title = f"{command.domain}/{command.recipe}  {command.order_run_id}"

    def table() -> Table:
        return watch_table(title, rows, tests)

    stream = follow(settings, [RUN_EVENTS, STEP_COMMANDS, STEP_EVENTS, TEST_RESULTS], False)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.5)  # the follower is positioned at the end before we send
    await send(settings, command)
    followed = command.order_run_id
    ended: dict[object, Envelope] = {}  # run ends seen, in case a repeat points at one
    with Live(table(), console=console, refresh_per_second=8, transient=as_json) as live:
        event = await first
        while True:
            run_id = getattr(event, "order_run_id", None)
            if isinstance(event, OrderRunFinished | OrderRunRejected):
                if len(ended) > 10_000:
                    ended.clear()
                ended[run_id] = event
            if isinstance(event, OrderRunDeduplicated) and run_id == followed:
                # The key started a run already: follow that one instead.
                followed = event.existing_order_run_id
                console.print(
                    f"idempotency key {escape(event.idempotency_key)!r} already started run"
                    f" {followed}; following it"
                )
                if as_json:
                    typer.echo(event.model_dump_json())
                if event.status is not None and followed not in ended:
                    await stream.aclose()
                    return EXIT[event.status]
                event = ended.get(followed, event)
            if getattr(event, "order_run_id", None) == followed:
                if as_json:
                    typer.echo(event.model_dump_json())
                code = show(event, rows, tests)
                live.update(table())
                if code is not None:
                    await stream.aclose()
                    return code
            event = await anext(stream)


def watch_table(title: str, rows: dict[str, list[str]], tests: list[Text]) -> Table:
    """Return the live table of `sous run --wait`: one row per step, then the latest tests."""
    t = Table(title=escape(title))
    for column in ("step", "attempt", "status", "detail"):
        t.add_column(column)
    for step, row in rows.items():
        t.add_row(*(Text(cell) for cell in (step, *row)))
    for line in tests[-10:]:
        t.add_row("", "", "", line)
    return t


def result_line(event: TestResult) -> Text:
    """Return one test's outcome as the live table shows it."""
    line = Text(str(event.status), style=COLOURS.get(event.status, ""))
    return line.append(f" {event.step}.{event.test}: {event.message}")


def show(event: Envelope, rows: dict[str, list[str]], tests: list[Text]) -> int | None:
    """Fold one event of the run into `rows` and `tests`; return the exit code once it ends."""
    if isinstance(event, ExecuteStep):
        rows[event.step] = [str(event.attempt), "dispatched", event.kind]
    elif isinstance(event, StepStarted):
        rows[event.step] = [str(event.attempt), "running", event.worker_id]
    elif isinstance(event, StepFinished):
        detail = (
            event.error.message
            if event.error
            else ", ".join(f"{k}={v}" for k, v in list(event.outputs.values.items())[:3])
        )
        rows[event.step] = [str(event.attempt), event.status.value, detail]
    elif isinstance(event, StepSkipped):
        rows[event.step] = ["-", "skipped", event.reason]
    elif isinstance(event, TestSuiteFinished) and event.blocking and event.step in rows:
        rows[event.step][1] = "failed (tests)"
        rows[event.step][2] = ", ".join(event.failed_tests)
    elif isinstance(event, TestResult):
        tests.append(result_line(event))
    elif isinstance(event, OrderRunRejected):
        err.print(f"[red]refused:[/] {escape(event.reason)}")
        return 4
    elif isinstance(event, OrderRunFinished):
        why = f": {escape(event.reason)}" if event.reason else ""
        console.print(
            f"run {event.status.value}{why}  (tests: {event.tests.passed} passed,"
            f" {event.tests.failed} failed, {event.tests.warnings} warnings)"
        )
        return EXIT[event.status]
    return None


def tail_line(event: Envelope) -> str:
    """Return one line of `sous tail`: plain text, never markup."""
    if isinstance(event, TestResult):
        return (
            f"{event.occurred_at:%H:%M:%S} test {event.status:<8}"
            f" {event.domain}/{event.recipe}.{event.step}.{event.test}"
            f" [{event.kitchen}] {event.message}"
        )
    extra = getattr(event, "status", None) or getattr(event, "reason", "")
    return (
        f"{event.occurred_at:%H:%M:%S} {event.type:<17}"
        f" {getattr(event, 'domain', '')}/{getattr(event, 'recipe', '')}"
        f" {getattr(event, 'order_run_id', '')} {extra}"
    )


def follow_topics(
    domain: str | None,
    kitchen: str | None,
    severity: str | None,
    *,
    from_beginning: bool,
    as_json: bool,
) -> None:
    """Print the run and test-result topics as they come, filtered, until interrupted."""

    async def show() -> None:
        async for event in follow(KafkaSettings(), [RUN_EVENTS, TEST_RESULTS], from_beginning):
            if domain and getattr(event, "domain", None) != domain:
                continue
            if kitchen and getattr(event, "kitchen", None) != kitchen:
                continue
            if severity and getattr(event, "severity", severity) != severity:
                continue
            if as_json:
                typer.echo(event.model_dump_json())
            else:
                console.print(tail_line(event), markup=False, highlight=False)

    asyncio.run(show())
