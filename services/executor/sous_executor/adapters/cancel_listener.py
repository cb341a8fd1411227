"""Every replica hears every CancelStep, whatever partition it came on.

The executor group's subscriber handles a partition's messages one at a time, and waits
for a free slot before taking an ExecuteStep; a CancelStep queued behind it would wait too.
And after a rebalance the CancelStep may reach a replica other than the one running the
attempt. So each replica also reads the step commands topic outside any consumer group,
from the latest offset, and acts on CancelSteps only; the group subscriber stays the one
that dead-letters bad messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer

from sous_common.decoding import Refusal, decode_record
from sous_common.kafka import aiokafka_options
from sous_common.logs import get_logger
from sous_common.settings import KafkaSettings
from sous_contracts.steps import CancelStep
from sous_contracts.topics import STEP_COMMANDS

log = get_logger(__name__)


Headers = Sequence[tuple[str, bytes]] | None


def _is_cancel(headers: Headers) -> bool | None:
    for key, value in headers or ():
        if key == "type":
            return bool(value == b"CancelStep")
    return None  # no type header: look inside


class CancelListener:
    """Reads CancelSteps without a consumer group and hands them to `on_cancel`."""

    def __init__(
        self, kafka: KafkaSettings, on_cancel: Callable[[CancelStep], Awaitable[None]]
    ) -> None:
        self._kafka = kafka
        self._on_cancel = on_cancel
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe from the latest offset and start reading in the background."""
        consumer = AIOKafkaConsumer(
            STEP_COMMANDS.full_name(self._kafka.topic_prefix),
            **aiokafka_options(self._kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._read(consumer), name="cancel-listener")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=500)
                except Exception as exc:  # the group subscriber still delivers cancels
                    log.warning("cancel listener read failed; retrying", error=repr(exc))
                    await asyncio.sleep(1.0)
                    continue
                for records in batches.values():
                    for record in records:
                        await self._handle(record)
        finally:
            await consumer.stop()

    async def _handle(self, record: Any) -> None:
        if _is_cancel(record.headers) is False:
            return
        try:
            command = decode_record(record, ("CancelStep",), self._kafka.max_message_bytes)
        except Refusal:
            return  # another type, or bad: the group subscriber dead-letters it
        assert isinstance(command, CancelStep)
        await self._on_cancel(command)
