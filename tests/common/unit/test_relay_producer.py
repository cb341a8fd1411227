"""The relay's producer is replaced once the broker lost its idempotence sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from sous_common.relay import RelayProducer
from sous_common.settings import KafkaSettings


class Producer:
    """Stands in for aiokafka's producer: its acks fail with a given error, or succeed."""

    made: list[Producer] = []

    def __init__(self, error: BaseException | None) -> None:
        self.error, self.started, self.stopped = error, False, False
        Producer.made.append(self)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, *_: Any, **__: Any) -> asyncio.Future[object]:
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            ack.set_exception(self.error)
        else:
            ack.set_result("ok")
        return ack


@pytest.mark.parametrize(
    ("error", "replaced"),
    [(OutOfOrderSequenceNumber(), True), (KafkaTimeoutError(), False)],
)
async def test_a_lost_sequence_replaces_the_producer(error: BaseException, replaced) -> None:
    Producer.made = []
    errors = iter([error, None])
    relay = RelayProducer(KafkaSettings(), new=lambda: Producer(next(errors, None)))  # type: ignore[arg-type, return-value]
    await relay.start()
    with pytest.raises(type(error)):
        await (await relay("t", None, b"v", {}))
    ack = await relay("t", None, b"v", {})
    assert (len(Producer.made) == 2) is replaced
    if replaced:  # the new producer sends
        assert await ack == "ok"
        assert Producer.made[0].stopped
        assert Producer.made[1].started
    else:  # any other failure is the relay's usual retry, on the same producer
        with pytest.raises(type(error)):
            await ack
