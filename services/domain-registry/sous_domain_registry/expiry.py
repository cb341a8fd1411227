"""Sandboxes past their time to live: teardown recipe started, then the kitchen deleted."""

from __future__ import annotations

import asyncio
import contextlib

from sous_common.logs import get_logger
from sous_common.runtime import Runtime
from sous_contracts.specs import KitchenSpec
from sous_domain_registry import runs, service
from sous_domain_registry.adapters import store
from sous_domain_registry.domain.validate import resolve_recipe

log = get_logger(__name__)
PRINCIPAL = "ttl"
"""Who the audit names for an expiry; the teardown run itself is the registry's own."""


async def teardown_and_delete(rt: Runtime, spec: KitchenSpec, *, by: str, action: str) -> bool:
    """Start the kitchen's teardown recipe (if any), then delete the kitchen."""
    if spec.teardown is not None:
        domain, recipe = resolve_recipe(spec.teardown, "")
        await runs.start_run(
            rt,
            domain=domain,
            recipe=recipe,
            variation=None,
            kitchen=spec.kitchen,
            params={},
            principal=runs.PRINCIPAL,
        )
    return await service.delete_kitchen(rt, spec.kitchen, by=by, action=action)


async def expire_kitchens(rt: Runtime) -> list[str]:
    """Tear down and delete every kitchen past its time to live; return their names."""
    async with rt.pool.acquire() as conn:
        expired = await store.expired_kitchens(conn)
    done = []
    for e in expired:
        spec = KitchenSpec.model_validate(e.spec)
        if await teardown_and_delete(rt, spec, by=PRINCIPAL, action="kitchen.expire"):
            log.info("kitchen expired", kitchen=spec.kitchen)
            done.append(spec.kitchen)
    return done


def schedule(rt: Runtime, every_s: float) -> None:
    """Sweep expired kitchens every `every_s` seconds while the runtime runs."""
    task: asyncio.Task[None] | None = None

    async def loop() -> None:
        while True:
            try:
                await expire_kitchens(rt)
            except Exception:  # a sweep that fails is retried at the next tick
                log.exception("kitchen expiry failed")
            await asyncio.sleep(every_s)

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(loop(), name="kitchen-expiry")

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    rt.on_started(start)
    rt.on_stopping(stop)
