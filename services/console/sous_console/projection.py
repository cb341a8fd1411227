"""The read model's writes: one upsert per message, in whatever order the topics deliver.

Topics are ordered per run only within one topic, so each write tolerates its neighbours
arriving first: a run row may be created by a step or a test result, and a finished run
or step never goes back to running.
"""

from __future__ import annotations

import json
from typing import Any

from sous_common.db import AnyConnection
from sous_contracts.common import TestStatus
from sous_contracts.registry import RegistryEntityChanged
from sous_contracts.runs import (
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
)
from sous_contracts.steps import StepFinished, StepSkipped, StepStarted
from sous_contracts.tests import TestResult

RunEvent = OrderRunQueued | OrderRunStarted | OrderRunFinished | OrderRunRejected
Change = dict[str, Any]
"""What a write changed, as the live stream tells it (kind, ids, domain, kitchen …)."""

_FINAL = "('succeeded', 'failed', 'cancelled', 'rejected')"


async def run_event(conn: AnyConnection, e: RunEvent) -> Change:
    """Record a run's queueing, start, end or rejection."""
    status = {
        "OrderRunQueued": "queued",
        "OrderRunStarted": "running",
        "OrderRunRejected": "rejected",
    }.get(e.type) or str(getattr(e, "status", "failed"))
    fields: dict[str, Any] = {
        "domain": e.domain,
        "recipe": e.recipe,
        "variation": getattr(e, "variation", None),
        "kitchen": getattr(e, "kitchen", None),
        "params": json.dumps(getattr(e, "params", {})) if isinstance(e, OrderRunStarted) else None,
        "parent": getattr(e, "parent_order_run_id", None),
        "queued": e.occurred_at if isinstance(e, OrderRunQueued) else None,
        "started": e.occurred_at if isinstance(e, OrderRunStarted) else None,
        "finished": e.occurred_at if isinstance(e, OrderRunFinished | OrderRunRejected) else None,
        "reason": getattr(e, "reason", None),
    }
    if isinstance(e, OrderRunFinished) and e.started_at is not None:
        fields["started"] = e.started_at
    final = isinstance(e, OrderRunFinished | OrderRunRejected)
    await conn.execute(
        f"""
        INSERT INTO runs AS r (order_run_id, domain, recipe, variation, kitchen, status, params,
            parent_order_run_id, correlation_id, queued_at, started_at, finished_at, reason)
        VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{{}}'), $8, $9, $10, $11, $12, $13)
        ON CONFLICT (order_run_id) DO UPDATE SET
            domain = coalesce(EXCLUDED.domain, r.domain),
            recipe = coalesce(EXCLUDED.recipe, r.recipe),
            variation = coalesce(EXCLUDED.variation, r.variation),
            kitchen = coalesce(EXCLUDED.kitchen, r.kitchen),
            status = CASE WHEN $14 OR r.status NOT IN {_FINAL} THEN EXCLUDED.status
                          ELSE r.status END,
            params = CASE WHEN $7::jsonb IS NULL THEN r.params ELSE EXCLUDED.params END,
            parent_order_run_id = coalesce(EXCLUDED.parent_order_run_id, r.parent_order_run_id),
            correlation_id = CASE WHEN $11::timestamptz IS NULL THEN r.correlation_id
                                ELSE EXCLUDED.correlation_id END,
            queued_at = coalesce(r.queued_at, EXCLUDED.queued_at),
            started_at = coalesce(r.started_at, EXCLUDED.started_at),
            finished_at = coalesce(EXCLUDED.finished_at, r.finished_at),
            reason = coalesce(EXCLUDED.reason, r.reason)
        """,
        e.order_run_id,
        fields["domain"],
        fields["recipe"],
        fields["variation"],
        fields["kitchen"],
        status,
        fields["params"],
        fields["parent"],
        e.correlation_id,
        fields["queued"],
        fields["started"],
        fields["finished"],
        fields["reason"],
        final,
    )
    if isinstance(e, OrderRunStarted) and e.cause is not None:
        await conn.execute(
            "UPDATE runs SET cause = $2::jsonb WHERE order_run_id = $1",
            e.order_run_id,
            e.cause.model_dump_json(),
        )
        if e.cause.upstream:
            await conn.executemany(
                "INSERT INTO run_edges (upstream, downstream, kind, via) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT DO NOTHING",
                [(up, e.order_run_id, kind, via) for up, kind, via in e.cause.upstream],
            )
    return {
        "kind": "run",
        "order_run_id": str(e.order_run_id),
        "domain": e.domain,
        "recipe": e.recipe,
        "kitchen": fields["kitchen"],
        "status": status,
    }


async def _where(conn: AnyConnection, order_run_id: Any) -> tuple[str | None, str | None]:
    row = await conn.fetchrow(
        "SELECT domain, kitchen FROM runs WHERE order_run_id = $1", order_run_id
    )
    return (row["domain"], row["kitchen"]) if row else (None, None)


async def step_event(conn: AnyConnection, e: StepStarted | StepFinished) -> Change:
    """Record a step attempt starting or ending (a late start never hides the end)."""
    finished = isinstance(e, StepFinished)
    status = str(e.status) if isinstance(e, StepFinished) else "running"
    await conn.execute(
        """
        INSERT INTO steps AS s (step_run_id, attempt, order_run_id, step, status, worker_id,
            started_at, finished_at, duration_s, log_tail, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
        ON CONFLICT (step_run_id, attempt) DO UPDATE SET
            status = CASE WHEN s.finished_at IS NULL THEN EXCLUDED.status ELSE s.status END,
            started_at = coalesce(s.started_at, EXCLUDED.started_at),
            finished_at = coalesce(s.finished_at, EXCLUDED.finished_at),
            duration_s = coalesce(s.duration_s, EXCLUDED.duration_s),
            log_tail = CASE WHEN EXCLUDED.log_tail <> '' THEN EXCLUDED.log_tail
                            ELSE s.log_tail END,
            error = coalesce(s.error, EXCLUDED.error)
        """,
        e.step_run_id,
        e.attempt,
        e.order_run_id,
        e.step,
        status,
        e.worker_id,
        None if finished else e.occurred_at,
        e.occurred_at if finished else None,
        e.duration_s if isinstance(e, StepFinished) else None,
        e.log_tail if isinstance(e, StepFinished) else "",
        e.error.model_dump_json() if isinstance(e, StepFinished) and e.error else None,
    )
    domain, kitchen = await _where(conn, e.order_run_id)
    return {
        "kind": "step",
        "order_run_id": str(e.order_run_id),
        "step": e.step,
        "attempt": e.attempt,
        "status": status,
        "domain": domain,
        "kitchen": kitchen,
        "at": e.occurred_at.isoformat(),
        "duration_s": e.duration_s if isinstance(e, StepFinished) else None,
    }


async def step_skipped(conn: AnyConnection, e: StepSkipped) -> Change:
    """Record a step the scheduler skipped (attempt 0: it never ran), with the reason."""
    error = json.dumps({"kind": "skipped", "message": e.reason})
    await conn.execute(
        "INSERT INTO steps (step_run_id, attempt, order_run_id, step, status, finished_at, error)"
        " VALUES ($1, 0, $2, $3, 'skipped', $4, $5::jsonb) ON CONFLICT DO NOTHING",
        e.step_run_id,
        e.order_run_id,
        e.step,
        e.occurred_at,
        error,
    )
    domain, kitchen = await _where(conn, e.order_run_id)
    return {
        "kind": "step",
        "order_run_id": str(e.order_run_id),
        "step": e.step,
        "attempt": 0,
        "status": "skipped",
        "domain": domain,
        "kitchen": kitchen,
        "at": e.occurred_at.isoformat(),
        "duration_s": None,
    }


def _bucket(status: TestStatus) -> str | None:
    if status is TestStatus.PASSED:
        return "tests_pass"
    if status is TestStatus.WARNING:
        return "tests_warn"
    if status in (TestStatus.FAILED, TestStatus.ERROR):
        return "tests_fail"
    return None


async def test_result(conn: AnyConnection, e: TestResult) -> Change:
    """Record one test result and count it on its run."""
    await conn.execute(
        """
        INSERT INTO test_results (message_id, order_run_id, step, test, kind, severity, status,
            domain, recipe, kitchen, variation, value, threshold, message, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, $15)
        ON CONFLICT DO NOTHING
        """,
        e.message_id,
        e.order_run_id,
        e.step,
        e.test,
        e.kind,
        str(e.severity),
        str(e.status),
        e.domain,
        e.recipe,
        e.kitchen,
        e.variation,
        json.dumps(e.value),
        json.dumps(e.threshold),
        e.message,
        e.occurred_at,
    )
    # A monitor's check is no run: its results are listed, never counted on a run.
    if e.monitor is None and (column := _bucket(e.status)) is not None:
        await conn.execute(
            f"""
            INSERT INTO runs AS r (order_run_id, domain, recipe, variation, kitchen, {column})
            VALUES ($1, $2, $3, $4, $5, 1)
            ON CONFLICT (order_run_id) DO UPDATE SET {column} = r.{column} + 1
            """,
            e.order_run_id,
            e.domain,
            e.recipe,
            e.variation,
            e.kitchen,
        )
    return {
        "kind": "test",
        "message_id": str(e.message_id),
        "order_run_id": str(e.order_run_id),
        "domain": e.domain,
        "recipe": e.recipe,
        "kitchen": e.kitchen,
        "step": e.step,
        "test": e.test,
        "severity": str(e.severity),
        "status": str(e.status),
        "value": e.value,
        "threshold": e.threshold,
        "at": e.occurred_at.isoformat(),
    }


async def completion(conn: AnyConnection, e: DomainRunCompleted) -> Change:
    """Record a domain's completion event (what triggers downstream runs)."""
    await conn.execute(
        """
        INSERT INTO completions (message_id, order_run_id, domain, recipe, variation, kitchen,
            status, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT DO NOTHING
        """,
        e.message_id,
        e.order_run_id,
        e.domain,
        e.recipe,
        e.variation,
        e.kitchen,
        str(e.status),
        e.occurred_at,
    )
    return {"kind": "completion", "domain": e.domain, "kitchen": e.kitchen}


async def entity(conn: AnyConnection, e: RegistryEntityChanged) -> Change:
    """Keep the newest version of a registry entity (per kitchen override)."""
    await conn.execute(
        """
        INSERT INTO entities (entity_id, kitchen, kind, domain, name, version, spec, deleted)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
        ON CONFLICT (entity_id, kitchen) DO UPDATE SET kind = EXCLUDED.kind,
            domain = EXCLUDED.domain, name = EXCLUDED.name, version = EXCLUDED.version,
            spec = EXCLUDED.spec, deleted = EXCLUDED.deleted
        """,
        e.entity_id,
        e.kitchen or "",
        str(e.kind),
        e.domain,
        e.name,
        e.version,
        json.dumps(e.spec),
        e.deleted,
    )
    return {"kind": "entity", "domain": e.domain, "kitchen": e.kitchen}
