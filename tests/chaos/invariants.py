"""The invariant checker: what the topics and the databases hold once the workload drained.

It reads every topic of the run from its start and the scheduler's and the warehouse's
tables, and returns each broken promise as a sentence, with the figures of the run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from sous_common.kafka import aiokafka_options
from sous_common.settings import KafkaSettings
from sous_contracts import decode_message
from sous_contracts.runs import (
    DomainRunCompleted,
    OrderRunFinished,
    OrderRunRejected,
    OrderRunStarted,
)
from sous_contracts.steps import StepStarted
from sous_contracts.topics import DOMAIN_EVENTS, RUN_EVENTS, STEP_EVENTS

SQL_STEPS = {"a": ["load"], "c": ["load"], "b": ["copy"], "d": ["merge"]}


@dataclass
class Report:
    """Broken promises (empty when all hold) and the run's figures."""

    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


async def read_all(kafka: KafkaSettings, topics: list) -> list:
    """Every message of the topics, from their start to their end now, decoded."""
    consumer = AIOKafkaConsumer(
        *(t.full_name(kafka.topic_prefix) for t in topics),
        **aiokafka_options(kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list = []
    try:
        async with asyncio.timeout(60):
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            ends = await consumer.end_offsets(list(consumer.assignment()))
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend(decode_message(r.value) for r in records)
    finally:
        await consumer.stop()
    return seen


@dataclass
class Evidence:
    """What the checker reads once the workload drained."""

    messages: list
    """Every message of the run, step and domain topics, in topic order."""
    runs: list[dict[str, Any]]
    """The scheduler's runs: id, domain, phase."""
    firings: list[dict[str, Any]]
    """The scheduler's trigger firings: trigger_id, upstream_message_id, order_run_id."""
    effects: dict[tuple[uuid.UUID, str], int]
    """How many rows each (run, sql step) wrote to the side-effect table."""
    shell_lines: list[str]
    """One line per shell attempt executed: step_run_id and attempt."""


async def check(
    kafka: KafkaSettings, database_url: str, suffix: str, data: str, side: Path, sent: list
) -> Report:
    """Check every invariant; `sent` are the StartOrderRun commands the workload sent."""
    messages = await read_all(kafka, [RUN_EVENTS, DOMAIN_EVENTS, STEP_EVENTS])
    conn = await asyncpg.connect(database_url)
    try:
        runs = await conn.fetch(f"SELECT id, domain, phase FROM s_{suffix}.runs")
        firings = await conn.fetch(
            f"SELECT trigger_id, upstream_message_id, order_run_id, outcome"
            f" FROM s_{suffix}.trigger_firings"
        )
        effects = await conn.fetch(
            f"SELECT run_id, step, count(*) AS n FROM {data}.effects GROUP BY run_id, step"
        )
    finally:
        await conn.close()
    evidence = Evidence(
        messages=messages,
        runs=[dict(r) for r in runs],
        firings=[dict(r) for r in firings],
        effects={(r["run_id"], r["step"]): r["n"] for r in effects},
        shell_lines=_lines(side),
    )
    return judge(evidence, sent)


def judge(evidence: Evidence, sent: list) -> Report:
    """Return every broken promise in the evidence, and the run's figures."""
    report = Report()
    bad = report.violations.append
    messages, runs, firings = evidence.messages, evidence.runs, evidence.firings

    started = {m.order_run_id: m for m in _of(messages, OrderRunStarted)}
    rejected = {m.order_run_id: m.reason for m in _of(messages, OrderRunRejected)}
    finishes: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    copies: Counter[uuid.UUID] = Counter()
    status: dict[uuid.UUID, str] = {}
    for m in _of(messages, OrderRunFinished):
        finishes[m.order_run_id].add(m.message_id)
        copies[m.order_run_id] += 1
        status[m.order_run_id] = m.status.value

    # Every command accepted (or refused with a reason); every accepted run ended exactly once.
    for c in sent:
        if c.order_run_id not in started and c.order_run_id not in rejected:
            bad(f"command {c.order_run_id} ({c.domain}) neither started nor rejected")
    for run_id, m in started.items():
        ends = len(finishes.get(run_id, ()))
        if ends != 1:
            bad(f"run {run_id} ({m.domain}/{m.recipe}) ended {ends} times")
    stranger = set(finishes) - set(started)
    if stranger:
        bad(f"{len(stranger)} runs finished that never started: {sorted(stranger)[:3]}")

    # Nothing stuck: every run the scheduler holds is final.
    stuck = [(r["id"], r["domain"], r["phase"]) for r in runs if r["phase"] not in FINAL]
    if stuck:
        bad(f"{len(stuck)} runs left non-final: {stuck[:5]}")

    # A completion event per run: two different ones would fire its triggers twice.
    completions: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for m in _of(messages, DomainRunCompleted):
        if m.order_run_id is not None:
            completions[m.order_run_id].add(m.message_id)
    for run_id, ids in completions.items():
        if len(ids) != 1:
            bad(f"run {run_id} published {len(ids)} different completions")

    # sql steps took effect exactly once for a run that succeeded, at most once otherwise.
    rows = evidence.effects
    for run_id, m in started.items():
        for step in SQL_STEPS[m.domain]:
            n = rows.get((run_id, step), 0)
            if n > 1 or (status.get(run_id) == "succeeded" and n != 1):
                bad(f"sql step {m.domain}/{step} of run {run_id} took effect {n} times")

    # Shell attempts: each executed at most once, and only after it was taken (started).
    lines = Counter(tuple(line.split()) for line in evidence.shell_lines)
    taken = {(str(m.step_run_id), str(m.attempt)) for m in _of(messages, StepStarted)}
    twice = [k for k, n in lines.items() if n > 1]
    if twice:
        bad(f"{len(twice)} shell attempts executed more than once: {twice[:3]}")
    untaken = [k for k in lines if k not in taken]
    if untaken:
        bad(f"{len(untaken)} shell attempts executed without a StepStarted: {untaken[:3]}")

    # Triggers: one downstream run per (trigger, upstream event).
    upstream_ok = {
        i for i, m in started.items() if m.domain == "a" and status.get(i) == "succeeded"
    }
    follows = Counter(m.params.get("upstream") for m in started.values() if m.domain == "b")
    for run_id in upstream_ok:
        if follows.get(str(run_id), 0) != 1:
            bad(f"a run {run_id} started {follows.get(str(run_id), 0)} b/follow runs")
    orphans = set(follows) - {str(i) for i in upstream_ok}
    if orphans:
        bad(f"b/follow runs with no succeeded upstream a run: {sorted(orphans)[:3]}")
    fired = Counter(r["order_run_id"] for r in firings if r["order_run_id"] is not None)
    if any(n > 1 for n in fired.values()):
        bad("one downstream run recorded for several firings")
    joins = {i for i, m in started.items() if m.domain == "d"}
    join_firings = {r["order_run_id"] for r in firings if "join" in r["trigger_id"]}
    if joins != join_firings - {None}:
        bad(f"d/join runs {len(joins)} differ from the join's firings {len(join_firings)}")
    some = {m.domain for i, m in started.items() if status.get(i) == "succeeded"}
    if {"a", "c"} <= some and not joins:
        bad("the a+c join never fired")

    by_domain = Counter(f"{m.domain}:{status.get(i, 'unfinished')}" for i, m in started.items())
    attempts = Counter((m.step_run_id, m.attempt) for m in _of(messages, StepStarted))
    report.figures = {
        "commands": len(sent),
        "runs": len(started),
        "rejected": len(rejected),
        "runs_by_domain_status": dict(sorted(by_domain.items())),
        "finished_copies_on_topic": sum(copies.values()),
        "attempts_started": len(attempts),
        "retried_steps": sum(1 for (_, a) in attempts if a > 1),
        "shell_executions": sum(lines.values()),
        "trigger_firings": len(firings),
    }
    return report


FINAL = {"succeeded", "failed", "cancelled"}


def _of(messages: list, kind: type) -> list:
    return [m for m in messages if isinstance(m, kind)]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def dumps(report: Report) -> str:
    """The report as one JSON line."""
    return json.dumps({"violations": report.violations, **report.figures}, default=str)
