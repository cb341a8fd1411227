"""The one subscriber of the step commands topic: ExecuteStep and CancelStep."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sous_common.runtime import Runtime
from sous_contracts.steps import CancelStep, ExecuteStep
from sous_contracts.topics import STEP_COMMANDS
from sous_executor.service import Executor

StepCommand = Annotated[ExecuteStep | CancelStep, Field(discriminator="type")]


def register(runtime: Runtime, executor: Executor) -> None:
    """Subscribe the executor to the step commands topic in the executor group.

    Commands come in batches of up to the pool's size: the attempts of a batch are taken
    together (one transaction under load) and its offsets committed once all are taken.
    """
    batches = runtime.batch_options(executor.settings.concurrency)

    @runtime.broker.subscriber(runtime.topic(STEP_COMMANDS), **batches)
    async def on_step_commands(commands: list[StepCommand]) -> None:
        await executor.handle(commands)
