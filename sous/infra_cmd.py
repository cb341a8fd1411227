"""`sous infra …`: local Kafka and PostgreSQL (deploy/local), whole or one server at a time.

Only typer is imported here; the commands import sous.infra when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from sous.infra.commands import Server
    from sous.infra.layout import Layout

T = TypeVar("T")

infra_app = typer.Typer(
    no_args_is_help=True,
    help="Local Kafka and PostgreSQL: up, down, status, env; start/stop one server.",
    pretty_exceptions_enable=False,
)
NOT_RUNNING = 3
"""Exit status of `status` and `env` when the servers do not both run."""


@infra_app.callback()
def options(
    ctx: typer.Context,
    folder: Path | None = typer.Option(
        None,
        "--dir",
        help="Run folder of the instance (default: ${SOUS_RUN_DIR:-<repo>/.run}/local).",
    ),
) -> None:
    """Local Kafka (KRaft, jars from Maven Central) and PostgreSQL (initdb), on free ports."""
    ctx.obj = folder


def _layout(ctx: typer.Context) -> Layout:
    from sous.infra.layout import Layout

    folder: Path | None = ctx.obj
    return Layout.at(folder)


def _run(action: Callable[[], T]) -> T:
    """Run a command; a failure prints one line (after the logs it showed) and exits 1."""
    from sous.infra.errors import InfraError, log

    try:
        return action()
    except InfraError as exc:
        log(f"error: {exc}")
        raise typer.Exit(1) from None


def _server(name: str) -> Server:
    from sous.infra.commands import Server

    try:
        return Server(name)
    except ValueError:
        raise typer.BadParameter(f"{name!r}: kafka or postgres", param_hint="SERVER") from None


@infra_app.command()
def up(
    ctx: typer.Context,
    secure: bool = typer.Option(False, "--secure", help="Kafka with SASL/SCRAM and ACLs."),
) -> None:
    """Start what is not running, wait until ready, print the env lines (only they go to stdout)."""
    from sous.infra import commands

    typer.echo(_run(lambda: commands.up(_layout(ctx), secure=secure)), nl=False)


@infra_app.command()
def down(
    ctx: typer.Context,
    purge: bool = typer.Option(False, "--purge", help="Delete the run folder too."),
) -> None:
    """Stop both servers (data kept unless --purge)."""
    from sous.infra import commands

    _run(lambda: commands.down(_layout(ctx), purge=purge))


@infra_app.command()
def status(ctx: typer.Context) -> None:
    """Show state and ports; exit 0 if both run, else 3."""
    from sous.infra import commands

    text, running = _run(lambda: commands.status(_layout(ctx)))
    typer.echo(text, nl=False)
    if not running:
        raise typer.Exit(NOT_RUNNING)


@infra_app.command()
def env(ctx: typer.Context) -> None:
    """Print the env lines if both servers run, else exit 3."""
    from sous.infra import commands
    from sous.infra.errors import log

    text = _run(lambda: commands.env(_layout(ctx)))
    if text is None:
        log("not running (use: up)")
        raise typer.Exit(NOT_RUNNING)
    typer.echo(text, nl=False)


@infra_app.command()
def stop(ctx: typer.Context, server: str = typer.Argument(..., help="kafka or postgres")) -> None:
    """Stop one server; its port and data stay for `start`."""
    from sous.infra import commands

    _run(lambda: commands.stop(_layout(ctx), _server(server)))


@infra_app.command()
def start(ctx: typer.Context, server: str = typer.Argument(..., help="kafka or postgres")) -> None:
    """Start one server again on the same port with the same data (clients reconnect)."""
    from sous.infra import commands

    _run(lambda: commands.start(_layout(ctx), _server(server)))
