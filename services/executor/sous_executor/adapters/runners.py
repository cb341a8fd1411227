"""The runner of each step kind."""

from __future__ import annotations

from sous_contracts.common import Outputs
from sous_executor.adapters.context import Runner, StepContext
from sous_executor.adapters.http import run_http
from sous_executor.adapters.sql import run_sql
from sous_executor.adapters.subprocess_steps import run_python, run_shell
from sous_executor.domain.outcome import SpecError


async def run_noop(context: StepContext) -> Outputs:
    """Publish the spec's `outputs`, do nothing else."""
    outputs = context.command.spec.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise SpecError("noop 'outputs' must be a mapping")
    return Outputs(values=outputs)


RUNNERS: dict[str, Runner] = {
    "shell": run_shell,
    "python": run_python,
    "sql": run_sql,
    "http": run_http,
    "noop": run_noop,
}
"""Step kind → runner."""

PROCESS_KINDS = frozenset({"shell", "python"})
"""Kinds that run a child process and get a fresh working folder per attempt."""
