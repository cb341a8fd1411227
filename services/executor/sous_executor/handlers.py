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
    """Subscribe the executor to the step commands topic in the executor group."""

    @runtime.broker.subscriber(runtime.topic(STEP_COMMANDS), **runtime.subscriber_options())
    async def on_step_command(command: StepCommand) -> None:
        if isinstance(command, ExecuteStep):
            await executor.execute(command)
        else:
            await executor.cancel(command)
