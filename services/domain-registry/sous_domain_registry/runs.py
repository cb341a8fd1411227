"""Use cases of runs: start and cancel (commands via the outbox), completion events, read model."""

from __future__ import annotations

import uuid
from typing import Any

from sous_common import inbox
from sous_common.runtime import Runtime
from sous_contracts.envelope import Envelope
from sous_contracts.runs import (
    CancelOrderRun,
    DomainRunCompleted,
    JoinWindowExpired,
    OrderRunDeduplicated,
    OrderRunFinished,
    OrderRunQueued,
    OrderRunRejected,
    OrderRunStarted,
    StartOrderRun,
    TriggerHeld,
)
from sous_contracts.steps import (
    StepEventsMark,
    StepFinished,
    StepHeartbeat,
    StepSkipped,
    StepStarted,
)
from sous_contracts.tests import TestResult, TestSuiteFinished
from sous_domain_registry.adapters import datasets, lineage, store
from sous_domain_registry.adapters import monitors as monitor_rows
from sous_domain_registry.adapters import runs as rows
from sous_domain_registry.domain.entities import Entity

PRODUCER = "domain-registry"
PRINCIPAL = "sous-domain-registry"
"""The principal the registry signs as; it holds `admin` on every domain."""
_KEYS = uuid.UUID("5d1b0c1e-7f3a-4a53-9a43-2f0c6a8e51b7")
"""Namespace of run ids derived from idempotency keys."""

RunEvent = (
    OrderRunRejected
    | OrderRunQueued
    | OrderRunStarted
    | OrderRunFinished
    | OrderRunDeduplicated
    | JoinWindowExpired
    | TriggerHeld
)
StepEvent = StepStarted | StepHeartbeat | StepFinished | StepEventsMark | StepSkipped
TestEvent = TestResult | TestSuiteFinished


class NotFoundError(LookupError):
    """A domain, recipe, variation or run that does not exist."""


async def start_run(
    rt: Runtime,
    *,
    domain: str,
    recipe: str,
    variation: str | None,
    kitchen: str | None,
    params: dict[str, Any],
    principal: str,
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Queue StartOrderRun in the outbox and record the requested run; return its id.

    An idempotency key is scoped to (domain, recipe, kitchen): the run id is derived from
    them, and a key the read model knows returns the run it started, without a command.
    """
    async with rt.transaction() as conn:
        kitchen = await target_kitchen(conn, domain, recipe, variation, kitchen)
        run_id = uuid.uuid4()
        if idempotency_key is not None:
            run_id = uuid.uuid5(_KEYS, f"{domain}/{recipe}/{kitchen or ''}/{idempotency_key}")
            known_run = await rows.run_of_key(conn, domain, recipe, kitchen, idempotency_key)
            if known_run is not None:
                return known_run
        command = StartOrderRun(
            order_run_id=run_id,
            domain=domain,
            recipe=recipe,
            variation=variation,
            kitchen=kitchen,
            params=params,
            idempotency_key=idempotency_key,
            principal=principal,
            producer=PRODUCER,
            correlation_id=run_id,
        )
        await rows.upsert_run(
            conn,
            run_id,
            domain=domain,
            recipe=recipe,
            variation=variation,
            kitchen=kitchen,
            status="requested",
            params=params,
            requested_by=principal,
            idempotency_key=idempotency_key,
        )
        await queue(
            rt, conn, command, principal, "run.start", f"{domain}/{recipe}", {"run": str(run_id)}
        )
    return run_id


async def queue(
    rt: Runtime,
    conn: Any,
    command: Envelope,
    principal: str,
    action: str,
    target: str,
    details: dict[str, Any],
) -> None:
    """Queue a command in the outbox and audit who asked for it, in the caller's transaction."""
    await rt.emit(conn, [command])
    await store.audit(conn, principal, action, target, details)


async def target_kitchen(
    conn: Any, domain: str, recipe: str, variation: str | None, kitchen: str | None
) -> str | None:
    """Check that what a start names exists; return the kitchen it runs in, when known.

    Raises:
        NotFoundError: the kitchen, the recipe (in it) or the variation does not exist.
    """
    if kitchen is not None and await store.get(conn, f"kitchen:{kitchen}") is None:
        raise NotFoundError(f"unknown kitchen {kitchen!r}")
    entity = await _version(conn, domain, recipe, kitchen)
    if entity is None:
        where = f" in kitchen {kitchen!r}, the kitchens above it or the base" if kitchen else ""
        raise NotFoundError(f"unknown recipe '{domain}/{recipe}'{where}")
    variations = entity.spec.get("variations", {})
    if variation is not None and variation not in variations:
        known = ", ".join(sorted(variations)) or "none"
        raise NotFoundError(f"unknown variation {variation!r} (variations: {known})")
    if kitchen is None and variation is not None:
        found: str = variations[variation]["kitchen"]
        return found
    return kitchen


async def _version(conn: Any, domain: str, recipe: str, kitchen: str | None) -> Entity | None:
    """Return the version of a recipe a run in `kitchen` uses, as the scheduler picks it.

    The version of the first kitchen from `kitchen` up to its root that has one of its own,
    else the base version; a recipe applied only into a sandbox is found in it and below it.
    """
    seen: set[str] = set()
    while kitchen is not None and kitchen not in seen:
        seen.add(kitchen)
        if (mine := await store.get(conn, f"recipe:{domain}/{recipe}@{kitchen}")) is not None:
            return mine
        found = await store.get(conn, f"kitchen:{kitchen}")
        kitchen = found.spec.get("parent") if found is not None else None
    return await store.get(conn, f"recipe:{domain}/{recipe}")


async def find_run(rt: Runtime, run_id: uuid.UUID) -> dict[str, Any] | None:
    """Return a run of the read model with its steps and test results."""
    async with rt.pool.acquire() as conn:
        return await rows.get_run(conn, run_id)


async def cancel_run(rt: Runtime, run_id: uuid.UUID, *, reason: str, principal: str) -> None:
    """Queue CancelOrderRun in the outbox."""
    async with rt.transaction() as conn:
        command = CancelOrderRun(
            order_run_id=run_id,
            reason=reason,
            principal=principal,
            producer=PRODUCER,
            correlation_id=run_id,
        )
        await queue(rt, conn, command, principal, "run.cancel", str(run_id), {"reason": reason})


async def publish_completion(rt: Runtime, event: DomainRunCompleted, *, principal: str) -> None:
    """Queue an external completion event of a domain run by another tool."""
    async with rt.transaction() as conn:
        if await store.get(conn, f"domain:{event.domain}") is None:
            raise NotFoundError(f"unknown domain {event.domain!r}")
        details = {"message_id": str(event.message_id), "status": event.status.value}
        await queue(
            rt, conn, event, principal, "event.publish", f"{event.domain}/{event.recipe}", details
        )


async def on_run_event(rt: Runtime, event: RunEvent, consumer: str) -> None:
    """Fold one run event into the read model, once."""
    async with rt.transaction() as conn:
        if not await inbox.claim(conn, consumer, event.message_id):
            return
        if isinstance(event, OrderRunDeduplicated):
            await rows.deduplicated(conn, event)
            return
        fields = _run_fields(event)
        if isinstance(event, OrderRunFinished):
            await datasets.record(conn, event)
        if isinstance(event, OrderRunStarted) and event.cause is not None:
            fields["cause"] = event.cause.model_dump(mode="json")
            await lineage.add_edges(conn, event.order_run_id, event.cause)
        await rows.upsert_run(conn, event.order_run_id, **fields)


def _run_fields(event: RunEvent) -> dict[str, Any]:
    """The read-model columns a run event sets."""
    if isinstance(event, OrderRunRejected):
        fields: dict[str, Any] = {"status": "rejected", "reason": event.reason}
        return fields | {"domain": event.domain or "?", "recipe": event.recipe or "?"}
    if isinstance(event, JoinWindowExpired):
        return {
            "status": "join-expired",
            "reason": event.describe(),
            "params": {"key": event.key},
            "domain": event.domain,
            "recipe": event.recipe,
            "kitchen": event.kitchen,
            "finished_at": event.occurred_at,
        }
    if isinstance(event, TriggerHeld):
        # The run it names starts when the monitors pass; its own events then take over.
        return {
            "status": "held",
            "reason": f"trigger {event.trigger_id} held: {event.reason}",
            "domain": event.domain,
            "recipe": event.recipe,
            "kitchen": event.kitchen,
        }
    if isinstance(event, OrderRunQueued):
        fields = {"status": "queued", "reason": None}  # a held trigger's reason is over
    elif isinstance(event, OrderRunStarted):
        fields = {
            "status": "running",
            "reason": None,
            "params": event.params,
            "started_at": event.occurred_at,
            "spec_version": event.spec_version,
        }
    elif isinstance(event, OrderRunFinished):
        fields = {
            "status": event.status.value,
            "reason": event.reason,
            "outputs": event.outputs.model_dump(mode="json"),
            "tests": event.tests.model_dump(mode="json"),
            "datasets": [d.model_dump(mode="json") for d in event.datasets],
            "finished_at": event.occurred_at,
        }
    else:
        raise TypeError(f"not a run event: {event.type}")
    return fields | {
        "domain": event.domain,
        "recipe": event.recipe,
        "variation": event.variation,
        "kitchen": event.kitchen,
    }


async def on_step_event(rt: Runtime, event: StepEvent, consumer: str) -> None:
    """Fold one step event into the read model, once (heartbeats and marks are not kept)."""
    if isinstance(event, StepHeartbeat | StepEventsMark):
        return
    async with rt.transaction() as conn:
        if not await inbox.claim(conn, consumer, event.message_id):
            return
        if isinstance(event, StepSkipped):
            # A skipped step never had an attempt: it is kept as attempt 0.
            await rows.step_attempt(
                conn,
                event.order_run_id,
                event.step,
                0,
                "skipped",
                at=event.occurred_at,
                reason=event.reason,
                outputs={"when": event.when, "seen": event.seen} if event.when else {},
            )
        elif isinstance(event, StepStarted):
            await rows.step_attempt(
                conn, event.order_run_id, event.step, event.attempt, "running", at=event.occurred_at
            )
        else:
            await rows.step_attempt(
                conn,
                event.order_run_id,
                event.step,
                event.attempt,
                event.status.value,
                at=event.occurred_at,
                reason=event.error.message if event.error else None,
                outputs=event.outputs.model_dump(mode="json"),
                log_tail=event.log_tail,
            )


async def on_test_event(rt: Runtime, event: TestEvent, consumer: str) -> None:
    """Fold one test result into the read model, once (suite summaries arrive per run).

    A monitor's check has no run: its summary becomes the monitor's latest health.
    """
    if event.monitor is not None:
        if isinstance(event, TestSuiteFinished) and event.domain and event.kitchen:
            async with rt.transaction() as conn:
                if await inbox.claim(conn, consumer, event.message_id):
                    await monitor_rows.record(conn, event)
        return
    if isinstance(event, TestSuiteFinished):
        return
    async with rt.transaction() as conn:
        if not await inbox.claim(conn, consumer, event.message_id):
            return
        await rows.test_result(
            conn,
            event.order_run_id,
            {
                "step": event.step,
                "test": event.test,
                "kind": event.kind,
                "severity": event.severity.value,
                "status": event.status.value,
                "value": event.value,
                "message": event.message,
                "at": event.occurred_at,
                "result_id": event.message_id,
            },
        )
