"""Reads of the read model for the views: runs, one run, test results, entities."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sous_common.db import AnyConnection

PAGE = 50


@dataclass(frozen=True)
class RunFilter:
    """The Runs view's filters (all optional) and page."""

    domain: str | None = None
    recipe: str | None = None
    variation: str | None = None
    kitchen: str | None = None
    status: str | None = None
    page: int = 1


def _where(flt: Any, readable: list[str] | None, fields: tuple[str, ...]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for name in fields:
        value = getattr(flt, name)
        if value:
            args.append(value)
            clauses.append(f"{name} = ${len(args)}")
    if readable is not None:
        args.append(readable)
        clauses.append(f"domain = ANY(${len(args)}::text[])")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def runs(
    conn: AnyConnection, flt: RunFilter, readable: list[str] | None
) -> tuple[list[dict[str, Any]], int]:
    """Return one page of runs, newest first, and how many match."""
    where, args = _where(flt, readable, ("domain", "recipe", "variation", "kitchen", "status"))
    total = await conn.fetchval(f"SELECT count(*) FROM runs{where}", *args)
    rows = await conn.fetch(
        f"""SELECT order_run_id, domain, recipe, variation, kitchen, status, started_at,
            finished_at, extract(epoch FROM finished_at - started_at)::float8 AS took_s,
            tests_pass, tests_fail, tests_warn, reason
            FROM runs{where} ORDER BY seen_at DESC, order_run_id
            LIMIT {PAGE} OFFSET {PAGE * (max(flt.page, 1) - 1)}""",
        *args,
    )
    return [dict(r) for r in rows], int(total)


async def run(conn: AnyConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    """Return one run, or None."""
    row = await conn.fetchrow(
        "SELECT *, extract(epoch FROM finished_at - started_at)::float8 AS took_s FROM runs"
        " WHERE order_run_id = $1",
        run_id,
    )
    if row is None:
        return None
    found = dict(row)
    found["params"] = json.loads(found["params"])
    return found


async def steps(conn: AnyConnection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """Return every attempt of every step of a run, in start order."""
    rows = await conn.fetch(
        "SELECT * FROM steps WHERE order_run_id = $1"
        " ORDER BY coalesce(started_at, finished_at), step, attempt",
        run_id,
    )
    found = [dict(r) for r in rows]
    for row in found:
        if isinstance(row.get("error"), str):
            row["error"] = json.loads(row["error"])
    return found


def _decoded(row: Any) -> dict[str, Any]:
    found = dict(row)
    for key in ("value", "threshold"):
        if isinstance(found.get(key), str):
            found[key] = json.loads(found[key])
    return found


async def tests_of_run(conn: AnyConnection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """Return a run's test results."""
    rows = await conn.fetch(
        "SELECT * FROM test_results WHERE order_run_id = $1 ORDER BY occurred_at", run_id
    )
    return [_decoded(r) for r in rows]


async def related_runs(conn: AnyConnection, found: dict[str, Any]) -> dict[str, Any]:
    """Return why a run started (its cause and upstream runs) and the runs it started.

    Runs from before run lineage carry no cause: their chain's first run and followers stand in.
    """
    if found.get("cause") is None:
        return await _chain(conn, found)
    cause = json.loads(found["cause"])
    edge = (
        "SELECT e.{near} AS order_run_id, e.kind, e.via, r.domain, r.recipe, r.status"
        " FROM run_edges e LEFT JOIN runs r ON r.order_run_id = e.{near}"
        " WHERE e.{far} = $1 ORDER BY r.seen_at NULLS LAST LIMIT 200"
    )
    upstream = await conn.fetch(
        edge.format(near="upstream", far="downstream"), found["order_run_id"]
    )
    downstream = await conn.fetch(
        edge.format(near="downstream", far="upstream"), found["order_run_id"]
    )
    return {
        "cause": cause,
        "upstreams": [dict(r) for r in upstream],
        "downstream": [dict(r) for r in downstream],
    }


async def _chain(conn: AnyConnection, found: dict[str, Any]) -> dict[str, Any]:
    run_id = found["order_run_id"]
    root = found.get("correlation_id")
    upstream = None
    for candidate in (found.get("parent_order_run_id"), root):
        if candidate is not None and candidate != run_id:
            upstream = await conn.fetchrow(
                "SELECT order_run_id, domain, recipe, status FROM runs WHERE order_run_id = $1",
                candidate,
            )
            break
    downstream = await conn.fetch(
        "SELECT order_run_id, domain, recipe, status FROM runs"
        " WHERE (parent_order_run_id = $1 OR correlation_id = $1) AND order_run_id <> $1"
        " ORDER BY seen_at LIMIT 50",
        run_id,
    )
    return {
        "upstream": dict(upstream) if upstream else None,
        "downstream": [dict(r) for r in downstream],
    }


@dataclass(frozen=True)
class TestFilter:
    """The Tests view's filters."""

    domain: str | None = None
    kitchen: str | None = None
    severity: str | None = None
    status: str | None = None


async def recent_results(
    conn: AnyConnection, flt: TestFilter, readable: list[str] | None, limit: int = 100
) -> list[dict[str, Any]]:
    """Return the newest test results matching the filters."""
    where, args = _where(flt, readable, ("domain", "kitchen", "severity", "status"))
    rows = await conn.fetch(
        f"SELECT * FROM test_results{where} ORDER BY occurred_at DESC LIMIT {int(limit)}", *args
    )
    return [_decoded(r) for r in rows]


async def result_history(
    conn: AnyConnection, *, domain: str, recipe: str, step: str, test: str, kitchen: str
) -> list[dict[str, Any]]:
    """Return a test's last results in one kitchen, oldest first."""
    rows = await conn.fetch(
        "SELECT * FROM (SELECT * FROM test_results WHERE domain = $1 AND recipe = $2"
        " AND step = $3 AND test = $4 AND kitchen = $5 ORDER BY occurred_at DESC LIMIT 30) t"
        " ORDER BY occurred_at",
        domain,
        recipe,
        step,
        test,
        kitchen,
    )
    return [_decoded(r) for r in rows]


async def entities(conn: AnyConnection, kind: str) -> list[dict[str, Any]]:
    """Return the live entities of a kind, every kitchen's version."""
    rows = await conn.fetch(
        "SELECT entity_id, kitchen, domain, name, spec FROM entities"
        " WHERE kind = $1 AND NOT deleted ORDER BY domain NULLS FIRST, name, kitchen",
        kind,
    )
    return [{**dict(r), "spec": json.loads(r["spec"])} for r in rows]


async def recipe_spec(
    conn: AnyConnection, domain: str, recipe: str, kitchen: str | None
) -> dict[str, Any] | None:
    """Return a recipe's spec as it applies in `kitchen` (its override, else the base)."""
    spec = await conn.fetchval(
        "SELECT spec FROM entities WHERE entity_id = $1 AND kitchen = ANY($2::text[])"
        " AND NOT deleted ORDER BY kitchen DESC LIMIT 1",
        f"recipe:{domain}/{recipe}",
        [kitchen or "", ""],
    )
    return json.loads(spec) if spec is not None else None


async def last_runs(conn: AnyConnection, kitchen: str | None) -> dict[tuple[str, str], Any]:
    """Return the newest run of each recipe (in one kitchen, or any)."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (domain, recipe) domain, recipe, order_run_id, status, tests_pass,"
        " tests_fail, tests_warn FROM runs WHERE domain IS NOT NULL AND recipe IS NOT NULL"
        " AND ($1::text IS NULL OR kitchen = $1) ORDER BY domain, recipe, seen_at DESC",
        kitchen,
    )
    return {(r["domain"], r["recipe"]): dict(r) for r in rows}
