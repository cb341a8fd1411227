"""`sous run`, `cancel`, `tail` and `emit`: talking to the mesh over Kafka, as any system can.

The commands import Kafka clients and contracts when they run (see `sous.kafka_io` and
`sous.run_view`), so that building the command tree (`sous --help`) stays fast.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


class Outcome(StrEnum):
    """What `sous emit --status` accepts: `RunStatus`, whose module is slow to import."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


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
    from sous.kafka_io import publish, start_command
    from sous_contracts.runs import IDEMPOTENCY_KEY_MAX

    domain, recipe = _target(ref)
    if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        err.print(
            f"[red]--idempotency-key is {len(idempotency_key)} characters long;"
            f" the limit is {IDEMPOTENCY_KEY_MAX}[/]"
        )
        raise typer.Exit(2)
    command = start_command(domain, recipe, variation, kitchen, _params(param), idempotency_key)
    if not wait:
        publish(command)
        typer.echo(
            json.dumps({"order_run_id": str(command.order_run_id)})
            if as_json
            else str(command.order_run_id)
        )
        return
    from sous.run_view import watch

    raise typer.Exit(watch(command, as_json))


def cancel(
    order_run_id: uuid.UUID = typer.Argument(help="The run to cancel."),
    reason: str = typer.Option("cancelled from the CLI", "--reason"),
) -> None:
    """Cancel a run, its running steps and its child runs."""
    from sous.kafka_io import publish
    from sous_contracts.runs import CANCEL_REASON_MAX, CancelOrderRun

    if len(reason) > CANCEL_REASON_MAX:
        err.print(
            f"[red]--reason is {len(reason)} characters long; the limit is {CANCEL_REASON_MAX}[/]"
        )
        raise typer.Exit(2)
    publish(CancelOrderRun(producer="sous-cli", order_run_id=order_run_id, reason=reason))
    console.print(f"cancel sent for {order_run_id}")


def tail(
    domain: str | None = typer.Option(None, "--domain"),
    kitchen: str | None = typer.Option(None, "--kitchen"),
    severity: str | None = typer.Option(None, "--severity", help="error, warning or log"),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
    as_json: bool = typer.Option(False, "--json", help="One JSON message per line."),
) -> None:
    """Follow the run and test-result topics, as an ops console does."""
    from sous.run_view import follow_topics

    with contextlib.suppress(KeyboardInterrupt):
        follow_topics(domain, kitchen, severity, from_beginning=from_beginning, as_json=as_json)


def emit(
    ref: str = typer.Argument(help="DOMAIN/RECIPE (or job name) that finished."),
    kitchen: str = typer.Option("prod", "--kitchen"),
    status: Outcome = typer.Option(Outcome.SUCCEEDED, "--status"),
    param: list[str] = typer.Option([], "--param", "-p"),
) -> None:
    """Publish a completion event for a domain that another tool runs."""
    from sous.kafka_io import publish
    from sous_contracts.common import RunStatus
    from sous_contracts.runs import DomainRunCompleted

    domain, recipe = _target(ref)
    event = DomainRunCompleted(
        producer="sous-cli",
        domain=domain,
        recipe=recipe,
        kitchen=kitchen,
        status=RunStatus(status),
        params=_params(param),
        external=True,
    )
    publish(event)
    console.print(f"published DomainRunCompleted {event.message_id}")
