"""Graphs of the mesh (trigger edges) and of one recipe (step needs): build, layer, draw as SVG."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BOX_H = 30
CHAR_W = 7.2
GAP_X = 40
GAP_Y = 70
MARGIN = 20


def _text(value: str) -> str:
    """Escape SVG text (xml.sax.saxutils would do, but pulls in urllib for `sous --help`)."""
    return html.escape(value, quote=False)


@dataclass(frozen=True)
class Edge:
    """An arrow from `source` to `target`, with an optional label."""

    source: str
    target: str
    label: str = ""


@dataclass
class Graph:
    """Nodes (name → note, e.g. a nested recipe) and directed edges."""

    nodes: dict[str, str] = field(default_factory=dict)
    """Node name → a short note drawn under it ("" for none)."""
    edges: list[Edge] = field(default_factory=list)
    """Arrows between nodes."""

    def add(self, name: str, note: str = "") -> None:
        """Add a node (keeping an earlier note)."""
        if not self.nodes.get(name):
            self.nodes[name] = note


def trigger_mode(trigger: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]]:
    """Return a trigger's mode (`on`, `all`, `any`, `at_least N`) and its event matches."""
    if trigger.get("on"):
        return "on", [trigger["on"]]
    for mode in ("all", "any"):
        if trigger.get(mode):
            return mode, list(trigger[mode])
    least = trigger.get("at_least") or {}
    return f"at_least {least.get('n', '?')}", list(least.get("of", []))


def mesh_graph(recipes: Iterable[Mapping[str, Any]]) -> Graph:
    """Return the trigger graph of compiled recipes (`{"domain", "name", "spec"}` each).

    An edge runs from the upstream `domain/recipe` (`domain/*` when any recipe matches) to
    the recipe whose trigger listens to it, labelled with the trigger's mode.
    """
    graph = Graph()
    for r in recipes:
        target = f"{r['domain']}/{r['name']}"
        graph.add(target)
        for trigger in r["spec"].get("triggers", []):
            mode, matches = trigger_mode(trigger)
            for m in matches:
                source = f"{m['domain']}/{m.get('recipe') or '*'}"
                graph.add(source)
                graph.edges.append(Edge(source, target, mode))
    return graph


def recipe_graph(spec: Mapping[str, Any]) -> Graph:
    """Return the DAG of a compiled recipe's steps; nested recipe steps carry a note."""
    graph = Graph()
    for name, step in spec["steps"].items():
        graph.add(name, f"recipe {step['recipe']}" if step.get("recipe") else "")
        for need in step.get("needs", []):
            graph.edges.append(Edge(need, name))
    return graph


def layers(graph: Graph) -> list[list[str]]:
    """Return the nodes in longest-path layers (sources first); cycle edges are ignored."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        preds.setdefault(e.target, []).append(e.source)
        preds.setdefault(e.source, [])
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(node: str) -> int:
        if node in depth:
            return depth[node]
        if node in visiting:
            return -1
        visiting.add(node)
        depth[node] = 1 + max((visit(p) for p in preds[node]), default=-1)
        visiting.discard(node)
        return depth[node]

    for node in sorted(preds):
        visit(node)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in sorted(depth):
        out[depth[node]].append(node)
    position = {n: i for i, n in enumerate(out[0])} if out else {}
    for layer in out[1:]:
        # Barycentre ordering: place a node near the mean position of its predecessors.
        layer.sort(key=lambda n: (_mean(position.get(p, 0) for p in preds[n]), n))
        position |= {n: i for i, n in enumerate(layer)}
    return out


def _mean(values: Iterable[int]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def _box_width(name: str, note: str) -> float:
    return max(len(name), len(note)) * CHAR_W + 24


def to_svg(graph: Graph, title: str = "") -> str:
    """Return a self-contained SVG of the graph: one row of boxes per layer, arrows down."""
    rows = layers(graph)
    names = [n for row in rows for n in row]
    widths = {n: _box_width(n, graph.nodes.get(n, "")) for n in names}
    height_of = {n: BOX_H + (14 if graph.nodes.get(n) else 0) for n in names}
    row_w = [sum(widths[n] for n in row) + GAP_X * (len(row) - 1) for row in rows]
    width = max(row_w, default=0) + 2 * MARGIN
    top = MARGIN + (24 if title else 0)
    centre: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        x = MARGIN + (width - 2 * MARGIN - row_w[i]) / 2
        for n in row:
            centre[n] = (x + widths[n] / 2, top + i * (BOX_H + 14 + GAP_Y) + height_of[n] / 2)
            x += widths[n] + GAP_X
    height = top + len(rows) * (BOX_H + 14 + GAP_Y) - GAP_Y + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"'
        ' markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"'
        ' fill="#555"/></marker></defs>',
    ]
    if title:
        parts.append(f'<text x="{MARGIN}" y="{MARGIN + 8}" font-size="14">{_text(title)}</text>')
    for e in graph.edges:
        (x1, y1), (x2, y2) = centre[e.source], centre[e.target]
        y1 += height_of[e.source] / 2
        y2 -= height_of[e.target] / 2
        parts.append(
            f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"'
            ' stroke="#555" marker-end="url(#arrow)"/>'
        )
        if e.label:
            parts.append(
                f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + y2) / 2:.1f}" fill="#a33">'
                f"{_text(e.label)}</text>"
            )
    for n, (cx, cy) in centre.items():
        w, h, note = widths[n], height_of[n], graph.nodes.get(n, "")
        fill = "#fff4d6" if note else "#e8f0fe"
        parts.append(
            f'<g class="node"><rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}"'
            f' height="{h}" rx="6" fill="{fill}" stroke="#345"/>'
            f'<text x="{cx:.1f}" y="{cy - h / 2 + 19:.1f}" text-anchor="middle">{_text(n)}</text>'
        )
        if note:
            parts.append(
                f'<text x="{cx:.1f}" y="{cy + h / 2 - 6:.1f}" text-anchor="middle"'
                f' font-size="10" fill="#666">{_text(note)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
