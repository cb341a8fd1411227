"""Traces across the mesh: `sous up` with tracing on, exporting to an in-process OTLP
receiver. A run started with POST /v1/runs, its tests, and the downstream run its completion
triggers are one trace whose spans come from the registry, scheduler, executor and test-runner.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from sous_contracts.common import RunStatus
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.scheduler.integration.test_runs import finished, run_events
from tests.sous_up import sous_up

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

DAY = "2026-11-25"  # a day the example data has orders for


def _trace_of(spans: list[ReceivedSpan], run_id: uuid.UUID) -> set[str]:
    return {s.trace_id for s in spans if s.attributes.get("sous.order_run_id") == str(run_id)}


async def _spans_until(receiver: OtlpReceiver, ready, timeout: float) -> list[ReceivedSpan]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready(spans := receiver.spans()):
        if loop.time() > deadline:
            per_service = Counter(s.service for s in spans)
            raise AssertionError(f"the spans expected never arrived: {per_service}")
        await asyncio.sleep(0.2)
    return spans


async def test_one_run_and_its_downstream_run_are_one_trace(
    kafka_settings,
    servers,
    warehouse,
    tmp_path,
) -> None:
    with OtlpReceiver() as receiver:
        tracing = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        async with sous_up(
            servers.database_url, kafka_settings, warehouse, tmp_path, env=tracing
        ) as up:
            # The examples' own runs first, so the runs below are told apart from them.
            events = await run_events(kafka_settings, lambda s: len(finished(s)) >= 4, 120)
            before = {e.order_run_id for e in finished(events)}

            started = {}
            async with httpx.AsyncClient(
                base_url=up.registry,
                headers={"Authorization": f"Bearer {up.token}"},
                timeout=10,
            ) as client:
                for domain, recipe in (("sales", "daily"), ("payments", "settle")):
                    r = await client.post(
                        "/v1/runs",
                        json={
                            "domain": domain,
                            "recipe": recipe,
                            "variation": "dev",
                            "params": {"day": DAY},
                        },
                    )
                    assert r.status_code == 202, r.text
                    started[uuid.UUID(r.json()["order_run_id"])] = f"{domain}/{recipe}"

            def new_runs(events: list) -> dict[str, object]:
                return {
                    f"{e.domain}/{e.recipe}": e
                    for e in finished(events)
                    if e.order_run_id not in before
                }

            events = await run_events(
                kafka_settings,
                lambda s: {"finance/revenue", "marketing/dashboard"} <= set(new_runs(s)),
                120,
            )
            runs = new_runs(events)
            assert all(e.status is RunStatus.SUCCEEDED for e in runs.values())  # type: ignore[attr-defined]
            downstream = runs["finance/revenue"].order_run_id  # type: ignore[attr-defined]
            further = runs["marketing/dashboard"].order_run_id  # type: ignore[attr-defined]

            # The downstream run's spans are in the trace of the upstream run that fired it.
            spans = await _spans_until(
                receiver,
                lambda s: (
                    _trace_of(s, further)
                    and any(_trace_of(s, run) & _trace_of(s, downstream) for run in started)
                ),
                60,
            )
            traces = _trace_of(spans, downstream)
            assert len(traces) == 1, f"the downstream run's spans are in {len(traces)} traces"
            (trace_id,) = traces
            assert _trace_of(spans, further) == {trace_id}
            upstream = [run for run in started if _trace_of(spans, run) == {trace_id}]
            assert len(upstream) == 1, "one POST /v1/runs starts the trace"
            spans = await _spans_until(
                receiver,
                lambda s: (
                    {x.service for x in s if x.trace_id == trace_id}
                    >= {
                        "sous-domain-registry",
                        "sous-scheduler",
                        "sous-executor",
                        "sous-test-runner",
                    }
                ),
                30,
            )
            mine = [s for s in spans if s.trace_id == trace_id]
            names = {(s.service, s.name) for s in mine}
            assert ("sous-domain-registry", "POST /v1/runs") in names
            roots = [s for s in mine if not s.parent_id]
            assert [s.name for s in roots] == ["POST /v1/runs"], roots
            for service, name in [
                ("sous-scheduler", "consume StartOrderRun"),
                ("sous-scheduler", "handle DomainRunCompleted"),
                ("sous-scheduler", "commit"),
                ("sous-domain-registry", "commit"),
                ("sous-executor", "consume ExecuteStep"),
                ("sous-executor", "publish StepFinished"),
                ("sous-test-runner", "consume RunTests"),
                ("sous-test-runner", "publish TestSuiteFinished"),
            ]:
                assert (service, name) in names, (service, name)
