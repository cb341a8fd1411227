"""`sous run`, `cancel`, `tail` and `emit`: talking to the mesh over Kafka, as any system can."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sous.keys_cmd import cli_signer
from sous_common.kafka import aiokafka_options
from sous_common.outbox import record_headers
from sous_common.settings import KafkaSettings
from sous_contracts import decode_message
from sous_contracts.common import RunStatus
from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunRejected,
    StartOrderRun,
)
from sous_contracts.steps import ExecuteStep, StepFinished, StepStarted
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_contracts.topics import (
    RUN_EVENTS,
    STEP_COMMANDS,
    STEP_EVENTS,
    TEST_RESULTS,
    Topic,
    topic_for,
)

console = Console()
err = Console(stderr=True)
EXIT = {RunStatus.SUCCEEDED: 0, RunStatus.FAILED: 1, RunStatus.CANCELLED: 3}
"""Exit codes of `sous run --wait`: 0 succeeded, 1 failed, 3 cancelled, 4 refused."""
COLOURS = {"passed": "green", "failed": "red", "error": "red", "warning": "yellow", "log": "dim"}
"""Colour of each test outcome; the text next to it comes from events and is never markup."""


def _params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            err.print(f"[red]--param wants key=value, got[/] {pair!r}")
            raise typer.Exit(2)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _target(ref: str) -> tuple[str, str]:
    domain, sep, recipe = ref.partition("/")
    if not sep or not domain or not recipe:
        err.print(f"[red]expected DOMAIN/RECIPE, got[/] {ref!r}")
        raise typer.Exit(2)
    return domain, recipe


async def _send(settings: KafkaSettings, message: Envelope) -> None:
    value = message.to_json()
    headers = record_headers(message, value, cli_signer())
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_for(message).full_name(settings.topic_prefix),
            value,
            key=message.kafka_key(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


async def _follow(
    settings: KafkaSettings, topics: list[Topic], from_beginning: bool
) -> AsyncGenerator[Envelope, None]:
    names = [t.full_name(settings.topic_prefix) for t in topics]
    # No group: aiokafka assigns every partition of the topics to this reader.
    consumer = AIOKafkaConsumer(
        *names, **aiokafka_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(15):
            while {tp.topic for tp in consumer.assignment()} != set(names):
                await consumer.getmany(timeout_ms=100)
        tps = list(consumer.assignment())
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # pin "now" before anything is sent
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    try:
                        yield decode_message(r.value)
                    except ValueError:
                        continue
    except TimeoutError:
        raise RuntimeError(f"topics {names} not found; is the stack up (`sous up`)?") from None
    finally:
        await consumer.stop()


def start_run(
    domain: str,
    recipe: str,
    *,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Produce a StartOrderRun; return the run id."""
    command = _command(domain, recipe, variation, kitchen, params, idempotency_key)
    asyncio.run(_send(KafkaSettings(), command))
    return command.order_run_id


def _command(
    domain: str,
    recipe: str,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    idempotency_key: str | None,
) -> StartOrderRun:
    return StartOrderRun(
        order_run_id=new_message_id(),
        producer="sous-cli",
        domain=domain,
        recipe=recipe,
        variation=variation,
        kitchen=kitchen,
        params=params,
        idempotency_key=idempotency_key,
    )


def run(
    ref: str = typer.Argument(help="DOMAIN/RECIPE"),
    variation: str | None = typer.Option(None, "--variation", "-v"),
    kitchen: str | None = typer.Option(None, "--kitchen", "-k"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value (JSON values ok)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the run live until it ends."),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start an order run; with --wait, watch its steps and tests and exit with its outcome."""
    domain, recipe = _target(ref)
    command = _command(domain, recipe, variation, kitchen, _params(param), idempotency_key)
    if not wait:
        asyncio.run(_send(KafkaSettings(), command))
        typer.echo(
            json.dumps({"order_run_id": str(command.order_run_id)})
            if as_json
            else str(command.order_run_id)
        )
        return
    raise typer.Exit(asyncio.run(_watch(command, as_json)))


async def _watch(command: StartOrderRun, as_json: bool) -> int:
    settings = KafkaSettings()
    rows: dict[str, list[str]] = {}
    tests: list[Text] = []

    title = f"{command.domain}/{command.recipe}  {command.order_run_id}"

    def table() -> Table:
        return watch_table(title, rows, tests)

    stream = _follow(settings, [RUN_EVENTS, STEP_COMMANDS, STEP_EVENTS, TEST_RESULTS], False)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.5)  # the follower is positioned at the end before we send
    await _send(settings, command)
    with Live(table(), console=console, refresh_per_second=8, transient=as_json) as live:
        event = await first
        while True:
            if getattr(event, "order_run_id", None) == command.order_run_id:
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


def cancel(
    order_run_id: uuid.UUID = typer.Argument(help="The run to cancel."),
    reason: str = typer.Option("cancelled from the CLI", "--reason"),
) -> None:
    """Cancel a run, its running steps and its child runs."""
    asyncio.run(
        _send(
            KafkaSettings(),
            CancelOrderRun(producer="sous-cli", order_run_id=order_run_id, reason=reason),
        )
    )
    console.print(f"cancel sent for {order_run_id}")


def tail(
    domain: str | None = typer.Option(None, "--domain"),
    kitchen: str | None = typer.Option(None, "--kitchen"),
    severity: str | None = typer.Option(None, "--severity", help="error, warning or log"),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
    as_json: bool = typer.Option(False, "--json", help="One JSON message per line."),
) -> None:
    """Follow the run and test-result topics, as an ops console does."""

    async def follow() -> None:
        async for event in _follow(KafkaSettings(), [RUN_EVENTS, TEST_RESULTS], from_beginning):
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

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow())


def emit(
    ref: str = typer.Argument(help="DOMAIN/RECIPE (or job name) that finished."),
    kitchen: str = typer.Option("prod", "--kitchen"),
    status: RunStatus = typer.Option(RunStatus.SUCCEEDED, "--status"),
    param: list[str] = typer.Option([], "--param", "-p"),
) -> None:
    """Publish a completion event for a domain that another tool runs."""
    domain, recipe = _target(ref)
    event = DomainRunCompleted(
        producer="sous-cli",
        domain=domain,
        recipe=recipe,
        kitchen=kitchen,
        status=status,
        params=_params(param),
        external=True,
    )
    asyncio.run(_send(KafkaSettings(), event))
    console.print(f"published DomainRunCompleted {event.message_id}")
