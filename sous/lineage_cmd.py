"""`sous lineage` and `sous impact`: why runs started, what they started, what a test touched.

Exit codes: 0 done, 1 not found, 2 usage, refusal or connection error.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from sous.query_cmd import coloured, runs_table, tests_summary
from sous.registry_client import TokenOpt, UrlOpt, call, err, fail, get_json

console = Console()


def _run_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        err.print(f"[red]not a run id:[/] {escape(value)}")
        raise typer.Exit(2) from None


def cause_text(cause: dict[str, Any] | None) -> str:
    """Return why a run started, in words."""
    if not cause:
        return "cause unknown"
    kind = cause.get("kind")
    if kind == "command":
        return f"started by {cause.get('principal') or 'a command'}"
    if kind == "schedule":
        return f"schedule {cause.get('schedule_id')} at {cause.get('fire_time')}"
    if kind == "nested":
        return f"nested step {cause.get('parent_step')} of {cause.get('parent_order_run_id')}"
    if kind == "trigger":
        ups = len(cause.get("upstream_order_run_ids") or [])
        return f"trigger {cause.get('trigger')} on {ups} upstream run(s)"
    return str(kind)


def node_label(node: dict[str, Any], via: str | None = None) -> Text:
    """Return one run of a lineage graph as a line of the tree."""
    if node.get("domain") is None:
        return Text(f"{node['order_run_id']} (not in the registry)", style="dim")
    head = f"{node['domain']}/{node['recipe']} [{node.get('variation')}] in {node.get('kitchen')} "
    line = Text.assemble((head, "bold"), coloured(node.get("status")))
    line.append(f"  tests p/f/w {tests_summary(node.get('tests'))}  {node['order_run_id']}")
    line.append(f"  ({cause_text(node.get('cause'))})", style="dim")
    if via:
        line.append(f"  via {via}", style="cyan")
    return line


def lineage_tree(graph: dict[str, Any], directions: list[str]) -> Tree:
    """Return the tree `sous lineage` prints: the run, then upstream and downstream branches."""
    nodes = {n["order_run_id"]: n for n in graph["nodes"]}
    root = graph["root"]
    tree = Tree(node_label(nodes[root]))
    for direction in directions:
        near, far = ("downstream", "upstream") if direction == "up" else ("upstream", "downstream")
        branch = tree.add("upstream (why it started)" if direction == "up" else "downstream")
        _grow(branch, root, graph["edges"], nodes, near, far, {root})
    if graph.get("elided"):
        tree.add(Text(graph.get("note", f"{graph['elided']} run(s) left out"), style="yellow"))
    return tree


def _grow(
    branch: Tree,
    at: str,
    edges: list[dict[str, Any]],
    nodes: dict[str, dict[str, Any]],
    near: str,
    far: str,
    seen: set[str],
) -> None:
    for e in edges:
        if e[near] != at or e[far] not in nodes:
            continue
        other = e[far]
        via = e.get("trigger") if e.get("kind") == "trigger" else f"nested step {e.get('trigger')}"
        if other in seen:  # a diamond: the run is shown once
            branch.add(Text(f"{other} (shown above)", style="dim"))
            continue
        seen.add(other)
        _grow(branch.add(node_label(nodes[other], via)), other, edges, nodes, near, far, seen)


def lineage(
    run_id: Annotated[str, typer.Argument(help="The order run id.")],
    up: bool = typer.Option(False, "--up", help="Only the runs upstream (why it started)."),
    down: bool = typer.Option(False, "--down", help="Only the runs it started, at any depth."),
    depth: int | None = typer.Option(None, "--depth", min=1, max=50, help="Hops to follow."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show why a run started and what it started, as a tree."""
    direction = "both" if up == down else ("up" if up else "down")
    graph = get_json(
        f"/v1/runs/{_run_id(run_id)}/lineage", url, token, direction=direction, depth=depth
    )
    if as_json:
        typer.echo(json.dumps(graph, indent=2))
        return
    console.print(lineage_tree(graph, ["up", "down"] if direction == "both" else [direction]))


def impact(
    ref: Annotated[
        str, typer.Argument(help="A run id, or the id of a (failed or warned) test result.")
    ],
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show every run downstream of a run or test result, and the domains to notify."""
    ref = _run_id(ref)
    r = call("GET", f"/v1/impact/runs/{ref}", url, token)
    if r.status_code == 404:
        r = call("GET", f"/v1/impact/test-results/{ref}", url, token)
    if r.status_code != 200:
        fail(r)
    answer: dict[str, Any] = r.json()
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    source = answer["source"]
    if "test" in source:
        console.print(
            Text.assemble(
                ("test ", "bold"),
                f"{source['step']}/{source['test']} ({source['severity']}) ",
                coloured(source["status"]),
                f" {source.get('message') or ''}",
            )
        )
    console.print(lineage_tree(answer, ["down"]))
    if answer["runs"]:
        console.print(runs_table(answer["runs"]))
        console.print(f"notify: {', '.join(answer['owners'])}")
    else:
        console.print("no downstream runs")
    for d in answer.get("datasets", []):
        console.print(
            f"dataset {escape(d['uri'])} written by {d['domain']} run {d['order_run_id']}"
        )
