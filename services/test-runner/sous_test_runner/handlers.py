"""Subscribers: RunTests in, delegated to the use case."""

from __future__ import annotations

from faststream.kafka.subscriber.usecase import DefaultSubscriber

from sous_contracts.tests import RunTests
from sous_contracts.topics import TEST_COMMANDS
from sous_test_runner import service
from sous_test_runner.service import Deps


def register(deps: Deps, *, consumers: int = 1) -> None:
    """Subscribe the test-runner's consumer group to the test commands topic.

    With several `consumers`, each gets its own partitions: suites of different runs are
    handled side by side while each partition keeps its order and commits after processing.
    """
    runtime = deps.runtime
    subscriber: DefaultSubscriber = runtime.broker.subscriber(
        runtime.topic(TEST_COMMANDS), **runtime.subscriber_options(), max_workers=consumers
    )

    @subscriber
    async def on_run_tests(command: RunTests) -> None:
        await service.run_tests(command, deps)
