"""Graph layout by Graphviz (`dot`): recipe DAGs and the mesh's trigger edges, as inline SVG."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

_SVG_START = re.compile(r"<svg\b")


class GraphvizMissing(RuntimeError):
    """The `dot` program is not installed (Debian's `graphviz` package)."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


async def render(dot: str, *, timeout_s: float = 10.0) -> str:
    """Lay out a graph with `dot` and return its SVG element (no XML prologue)."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizMissing("Graphviz's `dot` is not installed (apt-get install graphviz)")
    proc = await asyncio.create_subprocess_exec(
        program,
        "-Tsvg",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(dot.encode()), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {err.decode(errors='replace')[:500]}")
    text = out.decode()
    start = _SVG_START.search(text)
    return text[start.start() :] if start else text


def recipe_dot(spec: dict[str, Any]) -> str:
    """Return the DOT text of a recipe's steps; each node's SVG id is `step-<name>`."""
    lines = [
        "digraph recipe {",
        'rankdir=LR; bgcolor="transparent";',
        'node [shape=box, style="rounded,filled", fillcolor="#eeeeee", fontname="sans-serif"];',
    ]
    steps: dict[str, Any] = spec.get("steps", {})
    for name in steps:
        lines.append(f"{_quote(name)} [id={_quote('step-' + name)}];")
    for name, step in steps.items():
        for need in step.get("needs", []) or []:
            lines.append(f"{_quote(need)} -> {_quote(name)};")
    lines.append("}")
    return "\n".join(lines)


def _matches(trigger: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    for kind in ("on", "all", "any"):
        found = trigger.get(kind)
        if found:
            return kind, found if isinstance(found, list) else [found]
    at_least = trigger.get("at_least") or {}
    return f"at least {at_least.get('n', '?')}", list(at_least.get("of", []))


def mesh_dot(recipes: list[dict[str, Any]], last: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Return the DOT text of the mesh: recipes grouped by domain, trigger edges between them.

    A recipe's node shows its last run's status and test counts; an edge is coloured by the
    last run of its upstream recipe, and labelled with the join kind and key.
    """
    lines = [
        "digraph mesh {",
        'rankdir=LR; bgcolor="transparent"; compound=true;',
        'node [shape=box, style="rounded,filled", fillcolor="#eeeeee", fontname="sans-serif"];',
        'edge [fontname="sans-serif", fontsize=10];',
    ]
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for r in recipes:
        by_domain.setdefault(r["domain"] or "", []).append(r)
    for domain, items in sorted(by_domain.items()):
        lines.append(f"subgraph {_quote('cluster_' + domain)} {{ label={_quote(domain)};")
        for r in items:
            node = f"{domain}/{r['name']}"
            run = last.get((domain, r["name"]))
            label = r["name"]
            status = "never run"
            if run:
                status = run["status"]
                label += (
                    f"\n{status} · {run['tests_pass']}✓ {run['tests_fail']}✗ {run['tests_warn']}!"
                )
            lines.append(
                f"{_quote(node)} [id={_quote('recipe-' + node)}, label={_quote(label)},"
                f" class={_quote('status-' + status.replace(' ', '-'))},"
                f" URL={_quote('/runs?domain=' + domain + '&recipe=' + r['name'])}];"
            )
        lines.append("}")
    known = {f"{r['domain']}/{r['name']}" for r in recipes}
    for r in recipes:
        target = f"{r['domain']}/{r['name']}"
        for trigger in r["spec"].get("triggers", []) or []:
            kind, matches = _matches(trigger)
            label = kind + (f"\nkey {trigger['key']}" if trigger.get("key") else "")
            for m in matches:
                for source in _sources(m, recipes):
                    if source not in known:
                        continue
                    health = last.get(tuple(source.split("/", 1)))  # type: ignore[arg-type]
                    colour = {"succeeded": "#2e7d32", "failed": "#c62828"}.get(
                        (health or {}).get("status", ""), "#777777"
                    )
                    lines.append(
                        f"{_quote(source)} -> {_quote(target)} [label={_quote(label)},"
                        f" color={_quote(colour)}, class={_quote('trigger-edge')}];"
                    )
    lines.append("}")
    return "\n".join(lines)


def _sources(match: dict[str, Any], recipes: list[dict[str, Any]]) -> list[str]:
    domain = match.get("domain")
    if match.get("recipe"):
        return [f"{domain}/{match['recipe']}"]
    return [f"{domain}/{r['name']}" for r in recipes if r["domain"] == domain]
