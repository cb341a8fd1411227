"""Subscribers: batches of RunTests in, delegated to the use case."""

from __future__ import annotations

from sous_contracts.tests import RunTests
from sous_contracts.topics import TEST_COMMANDS
from sous_test_runner import service
from sous_test_runner.service import Deps


def register(deps: Deps, *, consumers: int = 1, batch_max: int = 50) -> None:
    """Subscribe the test-runner's consumer group to the test commands topic.

    Each of the `consumers` (members of the group) gets its own partitions and takes their
    RunTests in batches of up to `batch_max`: the suites of a batch run side by side and
    their results commit in one transaction, while each partition keeps its order and its
    offsets are committed after processing.
    """
    for _ in range(consumers):
        _subscribe(deps, batch_max)


def _subscribe(deps: Deps, batch_max: int) -> None:
    runtime = deps.runtime

    @runtime.broker.subscriber(runtime.topic(TEST_COMMANDS), **runtime.batch_options(batch_max))
    async def on_run_tests(commands: list[RunTests]) -> None:
        await service.run_batch(commands, deps)
