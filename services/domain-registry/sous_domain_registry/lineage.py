"""Use cases of run lineage: why runs started, what they started, what a bad test touched.

Every answer is a graph of runs (nodes with domain, recipe, variation, kitchen, status and
test counts; edges with the trigger that fired) walked from one run. Runs of domains the
caller may not read are elided: they leave the answer, and the answer says how many left.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sous_common.runtime import Runtime
from sous_common.trust import Principal
from sous_domain_registry.adapters import lineage as rows
from sous_domain_registry.runs import NotFoundError

MAX_DEPTH = 50
"""Deepest walk answered; trigger chains are bounded far below it by the causation depth."""
MAX_EDGES = 10_000
"""Most edges one answer walks per direction; a larger graph is cut and says so."""

Direction = Literal["up", "down", "both"]


class HiddenError(PermissionError):
    """The run asked about belongs to a domain the caller may not read."""


async def lineage(
    rt: Runtime, who: Principal, run_id: uuid.UUID, direction: Direction, depth: int
) -> dict[str, Any]:
    """Return the runs upstream and/or downstream of a run, up to `depth` hops."""
    async with rt.pool.acquire() as conn:
        walks: list[rows.Direction] = ["up", "down"] if direction == "both" else [direction]
        return await _graph(conn, who, run_id, walks, min(depth, MAX_DEPTH))


async def impact_of_run(rt: Runtime, who: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    """Return every run downstream of a run at any depth, their owners and datasets."""
    async with rt.pool.acquire() as conn:
        return await _impact(conn, who, run_id, source={"order_run_id": run_id})


async def impact_of_test(rt: Runtime, who: Principal, result_id: uuid.UUID) -> dict[str, Any]:
    """Return the impact of the run in which a test result (failed or warned) was reported."""
    async with rt.pool.acquire() as conn:
        test = await rows.test_result(conn, result_id)
        if test is None:
            raise NotFoundError(f"unknown test result {result_id}")
        if not who.may("read", test["domain"]):
            raise HiddenError(f"principal '{who.name}' lacks scope 'read' on {test['domain']}")
        return await _impact(conn, who, test["order_run_id"], source=test)


async def _impact(
    conn: Any, who: Principal, run_id: uuid.UUID, source: dict[str, Any]
) -> dict[str, Any]:
    graph = await _graph(conn, who, run_id, ["down"], MAX_DEPTH)
    downstream = [n for n in graph["nodes"] if n["order_run_id"] != run_id]
    downstream.sort(key=lambda n: (n["depth"], n.get("domain") or "", str(n["order_run_id"])))
    ids = [n["order_run_id"] for n in downstream]
    return {
        **graph,
        "source": source,
        "runs": downstream,
        "owners": sorted({n["domain"] for n in downstream if n.get("domain")}),
        # What the bad data may have reached: the source run's writes and every one below it.
        "datasets": await rows.datasets_written(conn, [run_id, *ids]),
    }


async def _graph(
    conn: Any, who: Principal, root: uuid.UUID, walks: list[rows.Direction], depth: int
) -> dict[str, Any]:
    edges: list[dict[str, Any]] = []
    truncated = False
    for direction in walks:
        found = await rows.walk(conn, root, direction, depth, MAX_EDGES)
        truncated |= len(found) >= MAX_EDGES
        edges += found
    distance: dict[uuid.UUID, int] = {root: 0}
    for e in edges:  # an edge at depth k joins runs k - 1 and k hops away
        for end in (e["upstream"], e["downstream"]):
            distance[end] = min(distance.get(end, e["depth"]), e["depth"])
    known = await rows.nodes(conn, list(distance))
    if root not in known:
        raise NotFoundError(f"unknown run {root}")
    if not who.may("read", known[root]["domain"]):
        raise HiddenError(f"principal '{who.name}' lacks scope 'read' on {known[root]['domain']}")
    hidden = {i for i, n in known.items() if not who.may("read", n["domain"])}
    nodes = [
        # A run named by a cause but not in the read model (another tool's, or purged).
        _without(hidden, {**known.get(i, {"order_run_id": i, "status": "unknown"}), "depth": d})
        for i, d in distance.items()
        if i not in hidden
    ]
    answer: dict[str, Any] = {
        "root": root,
        "nodes": nodes,
        "edges": [
            e for e in edges if e["upstream"] not in hidden and e["downstream"] not in hidden
        ],
        "elided": len(hidden),
        "truncated": truncated,
    }
    if hidden:
        answer["note"] = (
            f"{len(hidden)} run(s) of domains principal '{who.name}' may not read are left out"
        )
    return answer


def _without(hidden: set[uuid.UUID], node: dict[str, Any]) -> dict[str, Any]:
    """Return a node whose cause names no elided run."""
    cause = node.get("cause")
    if not hidden or not cause:
        return node
    ups = [u for u in cause["upstream_order_run_ids"] if uuid.UUID(u) not in hidden]
    parent = cause["parent_order_run_id"]
    if parent is not None and uuid.UUID(parent) in hidden:
        parent = None
    return {
        **node,
        "cause": {**cause, "upstream_order_run_ids": ups, "parent_order_run_id": parent},
    }
