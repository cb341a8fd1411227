"""`sous graph`: the mesh's trigger edges, or one recipe's DAG of steps, in the terminal or SVG."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from sous.registry_client import TokenOpt, UrlOpt, err, get_json

if TYPE_CHECKING:
    from rich.tree import Tree

    from sous.graph import Graph

console = Console()


def mesh_tree(graph: Graph, domains: list[str]) -> Tree:
    """Return the mesh as a tree: domain → recipe → the recipes it triggers."""
    from rich.tree import Tree

    tree = Tree("[bold]mesh[/]")
    for domain in domains:
        branch = tree.add(f"[bold]{domain}[/]")
        for node in sorted(n for n in graph.nodes if n.split("/")[0] == domain):
            leaf = branch.add(node)
            for e in graph.edges:
                if e.source == node:
                    leaf.add(f"→ {e.target} [dim]({escape(e.label)})[/]")
    return tree


def edge_lines(graph: Graph) -> list[str]:
    """Return one `upstream → downstream  (mode)` line per trigger edge."""
    return [f"{e.source} → {e.target}  ({e.label})" for e in graph.edges]


def dag_lines(graph: Graph) -> list[str]:
    """Return a recipe's steps layer by layer, each with what it needs and nested recipes."""
    from sous.graph import layers

    needs: dict[str, list[str]] = {}
    for e in graph.edges:
        needs.setdefault(e.target, []).append(e.source)
    out = []
    for i, layer in enumerate(layers(graph)):
        out.append(f"layer {i}")
        for step in layer:
            note = graph.nodes.get(step, "")
            line = f"  {step}"
            if needs.get(step):
                line += " ← " + ", ".join(sorted(needs[step]))
            if note:
                line += f"  [nested {note}]"
            out.append(line)
    return out


def _mesh(url: str | None, token: str | None) -> tuple[Graph, list[str]]:
    from sous.graph import mesh_graph

    domains = sorted(d["name"] for d in get_json("/v1/domains", url, token))
    recipes: list[dict[str, Any]] = []
    for d in domains:
        recipes.extend(get_json(f"/v1/domains/{d}/recipes", url, token))
    return mesh_graph(recipes), domains


def graph(
    target: Annotated[
        str | None, typer.Argument(help="DOMAIN/RECIPE for its DAG of steps; none for the mesh.")
    ] = None,
    svg: Path | None = typer.Option(None, "--svg", help="Also write the graph as SVG here."),
    as_json: bool = typer.Option(False, "--json", help="Print nodes and edges as JSON."),
    url: str | None = UrlOpt,
    token: str | None = TokenOpt,
) -> None:
    """Draw the mesh's trigger graph, or one recipe's DAG of steps."""
    from sous.graph import layers, recipe_graph, to_svg

    if target is None:
        g, domains = _mesh(url, token)
        title = "mesh: trigger edges"
    else:
        domain, _, name = target.partition("/")
        if not domain or not name:
            err.print(f"[red]expected DOMAIN/RECIPE, got[/] {target}")
            raise typer.Exit(2)
        g = recipe_graph(get_json(f"/v1/domains/{domain}/recipes/{name}", url, token)["spec"])
        title = f"recipe {target}: steps"
    if svg is not None:
        try:
            svg.write_text(to_svg(g, title))
        except OSError as exc:
            err.print(f"[red]cannot write[/] {svg}: {exc.strerror}")
            raise typer.Exit(2) from None
    if as_json:
        body = {"nodes": g.nodes, "edges": [asdict(e) for e in g.edges], "layers": layers(g)}
        typer.echo(json.dumps(body, indent=2))
    elif target is None:
        console.print(mesh_tree(g, domains))
        console.print("[bold]trigger edges[/]")
        for line in edge_lines(g) or ["(none)"]:
            console.out(line, highlight=False)
    else:
        console.print(f"[bold]{title}[/]")
        for line in dag_lines(g):
            console.out(line, highlight=False)
    if svg is not None and not as_json:
        console.print(f"[green]wrote[/] {svg}")
