"""Entry point of the `sous` command."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

# Only what builds the command tree is imported here; each command imports the clients and
# contracts it needs when it runs, so `sous --help` (and every command) starts fast.
from sous import (
    apply_cmd,
    backfill_cmd,
    dataset_cmd,
    graph_cmd,
    infra_cmd,
    keys_cmd,
    kitchen_cmd,
    lineage_cmd,
    purge_cmd,
    query_cmd,
    run_folder,
    runs_cmd,
    stack,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Sous: build, run, test and connect data domains.",
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(no_args_is_help=True, help="The topic catalog.")
app.add_typer(topics_app, name="topics")
app.add_typer(keys_cmd.keys_app, name="keys")
app.add_typer(infra_cmd.infra_app, name="infra")
app.command("apply")(apply_cmd.apply)
app.command("up")(stack.up)
app.command("down")(stack.down)
app.command("service")(stack.service)
app.command("run")(runs_cmd.run)
app.command("cancel")(runs_cmd.cancel)
app.command("tail")(runs_cmd.tail)
app.command("emit")(runs_cmd.emit)
app.command("runs")(query_cmd.runs)
app.command("backfill")(backfill_cmd.backfill)
app.command("backfills")(backfill_cmd.backfills)
app.command("status")(query_cmd.status)
app.command("logs")(query_cmd.logs)
app.command("graph")(graph_cmd.graph)
app.command("dataset")(dataset_cmd.dataset)
app.command("datasets")(dataset_cmd.datasets)
app.command("lineage")(lineage_cmd.lineage)
app.command("impact")(lineage_cmd.impact)
app.command("purge")(purge_cmd.purge)
apply_cmd.kitchen_app.command("list")(kitchen_cmd.kitchen_list)
apply_cmd.kitchen_app.command("versions")(kitchen_cmd.kitchen_versions)
app.add_typer(apply_cmd.kitchen_app, name="kitchen")
console = Console()


@topics_app.command("list")
def topics_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show every topic of the catalog with its key, partitions and message types."""
    from rich.table import Table

    from sous_common.settings import KafkaSettings
    from sous_contracts.topics import CATALOG

    prefix = KafkaSettings().topic_prefix
    rows = [
        {
            "topic": t.full_name(prefix),
            "key": t.key,
            "partitions": t.partitions,
            "cleanup": t.cleanup,
            "config": t.config(),
            "messages": list(t.message_types()),
        }
        for t in CATALOG
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("topic", "key", "partitions", "cleanup", "retention", "messages")
    for t in CATALOG:
        days = f"{t.retention_ms / 86_400_000:g} days" if t.retention_ms else "latest per key"
        table.add_row(
            t.full_name(prefix),
            t.key,
            str(t.partitions),
            t.cleanup,
            days,
            ", ".join(t.message_types()),
        )
    console.print(table)


@topics_app.command("create")
def topics_create(
    partitions: list[str] = typer.Option(
        [], "--partitions", help="TOPIC=N: partitions of one catalog topic (repeatable)."
    ),
    replication_factor: int = typer.Option(
        1, "--replication-factor", min=1, help="Replicas of each new topic."
    ),
) -> None:
    """Create the catalog's topics on the configured broker; existing ones get its settings."""
    import asyncio

    from sous_common.settings import KafkaSettings
    from sous_common.topic_admin import ensure_topics, update_topic_configs
    from sous_contracts.topics import CATALOG

    counts = {}
    for item in partitions:
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--partitions {item!r}: expected TOPIC=N with N >= 1")
        counts[name] = int(count)
    settings = KafkaSettings()
    created = asyncio.run(
        ensure_topics(settings, counts=counts, replication_factor=replication_factor)
    )
    for name in created:
        console.print(f"created {name}")
    for name, changed in asyncio.run(update_topic_configs(settings)).items():
        shown = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
        console.print(f"updated {name}: {shown}")
    console.print(f"[green]{len(CATALOG)} topics ready[/] on {settings.bootstrap}")


def main() -> None:
    """Run the CLI; failures print one line and exit 2, without a traceback."""
    run_folder.use_local_stack()
    try:
        app(standalone_mode=True)
    except (RuntimeError, OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
