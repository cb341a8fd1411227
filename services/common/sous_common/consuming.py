"""The consumer guard: dead letters for bad messages, retries for transient failures.

Every subscriber runs behind it (DESIGN §5.3). A message that cannot become a contract
(undecodable, invalid, unknown type, oversized) is published to the dead-letter topic with
the reason and its source coordinates, then acknowledged, so it never blocks the partition.
A transient failure (database or broker down) is retried after a backoff by rewinding the
partition: nothing is skipped.

Offsets are committed only for messages already handled, in the background every
`commit_interval_s` rather than once per message: a commit is a broker round trip, and the
inbox makes the few redeliveries after a crash harmless (DESIGN §5.1, §5.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage

from sous_common import metrics, tracing
from sous_common.decoding import MAX_HEADERS, Refusal, decode_record, remember
from sous_common.logs import get_logger
from sous_common.trust import SIGNED_TYPES, TrustStore, verify
from sous_contracts.deadletter import DeadLetter, kept_text
from sous_contracts.envelope import Envelope
from sous_contracts.topics import CATALOG, DEAD_LETTERS, topic_for

log = get_logger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.CannotConnectNowError,
)
"""Failures worth retrying forever: the message is fine, the world is not."""


class ConsumerGuard:
    """A FastStream middleware factory bound to one consumer group."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        consumer: str,
        prefix: str = "",
        max_message_bytes: int = 1_000_000,
        max_attempts: int = 5,
        commit_interval_s: float = 0.5,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.prefix = prefix
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.attempts: dict[tuple[str, int, int], int] = {}
        self._allowed: dict[str, tuple[str, ...]] = {
            t.full_name(prefix): t.message_types() for t in CATALOG
        }
        self.commit_interval_s = commit_interval_s
        self._handled: dict[Any, dict[TopicPartition, int]] = {}
        self.positions: dict[TopicPartition, int] = {}
        """The offset after the last record handled, per partition (consumer lag)."""
        self._committer: asyncio.Task[None] | None = None
        self.closed = False
        """Set when shutdown begins: no message reaches a handler any more."""
        self.trust: TrustStore | None = None
        """Set by a service that takes signed messages: they are verified against it."""
        self.verified: frozenset[str] = SIGNED_TYPES
        """The message types verified against `trust`."""
        self._ignored: dict[str, frozenset[bytes]] = {}

    def ignore(self, topic: str, *types: type[Envelope]) -> None:
        """Let records of `types` on `topic` pass undecoded: this consumer has no use for them.

        A record's `type` header names its type (every Sous producer sets it), so such a
        record costs no decoding; it is acknowledged like a handled one, and the consumers
        that take it judge it. A record without the header is decoded and judged as usual,
        so a malformed message of a type this consumer takes is still dead-lettered.

        Raises:
            ValueError: a type the topic does not carry (a typo would ignore nothing).
        """
        names = {str(t.model_fields["type"].default) for t in types}
        if stray := names - set(self._allowed.get(topic, ())):
            raise ValueError(f"{topic} does not carry {sorted(stray)}")
        encoded = frozenset(n.encode() for n in names)
        self._ignored[topic] = self._ignored.get(topic, frozenset()) | encoded

    def ignored(self, record: Any) -> bool:
        """Return True when the record's `type` header names a type ignored on its topic."""
        names = self._ignored.get(record.topic)
        if names:
            for key, value in record.headers or ():
                if key == "type":
                    return value in names
        return False

    def close(self) -> None:
        """Hand no further message to a handler; each is left for the partition's next owner.

        Synchronous, so a signal handler can call it: nothing is taken between the signal
        and the consumers leaving their groups.
        """
        self.closed = True

    def handled(self, consumer: Any, record: Any) -> None:
        """Note that a record is done with; its offset is committed soon after."""
        if consumer is None:
            return
        offsets = self._handled.setdefault(consumer, {})
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = self.positions[tp] = record.offset + 1
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop(), name="offset-commits")

    async def flush(self) -> None:
        """Commit every handled offset now (call before the consumers stop)."""
        pending, self._handled = self._handled, {}
        for consumer, offsets in pending.items():
            try:
                await asyncio.wait_for(consumer.commit(offsets), 10)
            except (KafkaError, TimeoutError, AssertionError) as exc:
                # Partitions moved to another replica, or the broker is away: the next
                # owner redelivers from the last commit, and the inbox drops repeats.
                log.info("offset commit skipped", error=repr(exc))

    async def stop(self, *, flush: bool = True) -> None:
        """Stop the background committer after a last flush.

        With `flush=False` (the consumers are gone) the offsets not committed yet are dropped:
        the partitions' next owners redeliver those messages and the inboxes drop repeats.
        """
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        if flush:
            await self.flush()
        else:
            self._handled = {}

    async def _commit_loop(self) -> None:
        while self._handled:
            await asyncio.sleep(self.commit_interval_s)
            await self.flush()

    def __call__(self, msg: Any, /, *, context: Any) -> _Guard:
        """Return the middleware for one message (FastStream's middleware protocol)."""
        return _Guard(msg, context=context, guard=self)

    async def dead_letter(self, record: Any, reason: str, kind: str) -> None:
        """Publish a DeadLetter for a raw record and log it."""
        value: bytes = record.value or b""
        letter = DeadLetter(
            producer=self.consumer,
            reason=kept_text(reason.encode(errors="replace"), 4096),
            error_kind=kind,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            consumer=self.consumer,
            key=kept_text(record.key, 1024) if record.key else None,
            payload=kept_text(value),
            payload_size=len(value),
            # Quoted, not trusted: at most MAX_HEADERS, each cut, so the letter stays small.
            headers={
                kept_text(str(k).encode(errors="replace"), 256): kept_text(v, 1024)
                for k, v in list(record.headers or ())[:MAX_HEADERS]
            },
        )
        await self.broker.publish(
            letter.to_json(),
            DEAD_LETTERS.full_name(self.prefix),
            key=letter.kafka_key(),
            headers={"type": letter.type},
        )
        metrics.dead_lettered(self.consumer, kind)
        log.warning(
            "dead-lettered",
            reason=reason,
            kind=kind,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )

    async def accept(self, record: Any) -> Envelope:
        """Return the record's contract (see `decoding.decode_record`), verified when signed.

        Raises:
            Refusal: the reason and kind to dead-letter it under.
        """
        message = decode_record(record, self._allowed.get(record.topic), self.max_message_bytes)
        if self.trust is not None and message.type in self.verified:
            message = await verify(message, record.value or b"", record.headers, self.trust)
        return message

    async def refuse(self, record: Any, refused: Refusal) -> None:
        """Publish a refusal's event, if any, then its dead letter."""
        if refused.event is not None:
            await self.broker.publish(
                refused.event.to_json(),
                topic_for(refused.event).full_name(self.prefix),
                key=refused.event.kafka_key(),
                headers={"type": refused.event.type},
            )
        await self.dead_letter(record, refused.reason, refused.kind)


class _Guard(BaseMiddleware):
    """One message, or one batch of records (a batch subscriber), through the guard.

    A batch is handled as a whole; when its handler fails for a reason other than a
    transient one, its messages are handled one at a time, so only the one that fails
    is retried and, in the end, dead-lettered.
    """

    def __init__(self, msg: Any, /, *, context: Any, guard: ConsumerGuard) -> None:
        super().__init__(msg, context=context)
        self.guard = guard

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        raw = msg.raw_message
        batch = isinstance(raw, tuple | list)  # a list from TestKafkaBroker
        records: tuple[Any, ...] = raw if batch else (raw,)
        consumer = getattr(msg, "consumer", None)
        if self.guard.closed:
            if consumer is not None:
                consumer.pause(*consumer.assignment())  # no more records until it leaves
            self._settle(consumer, records, set())  # the next owner redelivers them
            return None
        done: set[int] = set()
        accepted: list[tuple[int, Envelope]] = []
        result = None
        try:
            for i, record in enumerate(records):
                if self.guard.ignored(record):
                    done.add(i)
                    continue
                try:
                    accepted.append((i, await self.guard.accept(record)))
                except Refusal as refused:
                    await self.guard.refuse(record, refused)
                    done.add(i)
                except TRANSIENT as exc:
                    # Judging a signed message reads the database; publishing a dead letter
                    # needs the broker. Either away: this record and the rest come again.
                    await self._back_off(record, exc)
                    break
            if accepted:
                result = await self._handle(call_next, msg, batch, records, accepted, done)
        finally:
            # Also when cancelled or failing unexpectedly: what is not done is rewound, so
            # a later record's offset never gets committed past it.
            self._settle(consumer, records, done)
        return result

    async def _handle(
        self,
        call_next: Any,
        msg: StreamMessage[Any],
        batch: bool,
        records: tuple[Any, ...],
        accepted: list[tuple[int, Envelope]],
        done: set[int],
    ) -> Any:
        """Run the handler; add to `done` the indexes of the records it is done with."""
        started = time.perf_counter()
        try:
            result = await self._call(call_next, msg, batch, [(records[i], m) for i, m in accepted])
        except TRANSIENT as exc:
            await self._back_off(records[accepted[0][0]], exc)
            return None
        except Exception as exc:
            if len(accepted) == 1:
                await self._failed(records[accepted[0][0]], exc, accepted[0][0], done)
                return None
            for i, message in accepted:  # find the one that fails; the others go through
                try:
                    await self._call(call_next, msg, batch, [(records[i], message)])
                except TRANSIENT as again:
                    await self._back_off(records[i], again)
                    return None
                except Exception as failure:
                    if not await self._failed(records[i], failure, i, done):
                        return None
                    continue
                self._forget(records[i])
                done.add(i)
            return None
        metrics.handled(
            self.guard.consumer, (m for _, m in accepted), time.perf_counter() - started
        )
        for i, _ in accepted:
            self._forget(records[i])
            done.add(i)
        return result

    async def _call(
        self,
        call_next: Any,
        msg: StreamMessage[Any],
        batch: bool,
        pairs: list[tuple[Any, Envelope]],
    ) -> Any:
        messages = [m for _, m in pairs]
        remember(msg, messages if batch else messages[0])
        msg.clear_cache()
        with tracing.handling(self.guard.consumer, pairs, batch):
            return await call_next(msg)

    async def _back_off(self, record: Any, exc: BaseException) -> None:
        delay = min(0.1 * 2 ** self._count(record), 5.0)
        log.warning(
            "transient failure; retrying",
            error=repr(exc),
            delay_s=delay,
            topic=record.topic,
            offset=record.offset,
        )
        await asyncio.sleep(delay)

    async def _failed(self, record: Any, exc: Exception, i: int, done: set[int]) -> bool:
        """Retry a failing message a few times, then dead-letter it; True once it is done.

        A handler that raised `Refusal` judged the message itself: no retry can cure it.
        """
        tries = self._count(record)
        refused = exc if isinstance(exc, Refusal) else None
        if refused is None and tries < self.guard.max_attempts:
            log.error(
                "handler failed; retrying",
                attempt=tries,
                topic=record.topic,
                offset=record.offset,
                exc_info=exc,
            )
            await asyncio.sleep(min(0.1 * 2**tries, 5.0))
            return False
        if refused is None:
            reason = f"handler failed {tries} times: {type(exc).__name__}: {exc}"
            refused = Refusal(reason, "handler_error")
        try:
            await self.guard.refuse(record, refused)
        except TRANSIENT:
            await asyncio.sleep(1.0)
            return False  # the dead letter could not be written: not skipped either
        self._forget(record)
        done.add(i)
        return True

    def _settle(self, consumer: Any, records: tuple[Any, ...], done: set[int]) -> None:
        """Note what is done and rewind to what is not.

        Per partition, the records done up to the first one that is not are handled (their
        offsets get committed); the partition is rewound to that first one, so it and all
        after it are delivered again (the inbox drops the repeats).
        """
        rewound: set[tuple[str, int]] = set()
        for i, record in enumerate(records):
            partition = (record.topic, record.partition)
            if partition in rewound:
                continue
            if i in done:
                self.guard.handled(consumer, record)
                continue
            rewound.add(partition)
            if consumer is not None:
                with contextlib.suppress(IllegalStateError, AssertionError):  # revoked meanwhile
                    consumer.seek(TopicPartition(record.topic, record.partition), record.offset)

    def _count(self, record: Any) -> int:
        where = (record.topic, record.partition, record.offset)
        self.guard.attempts[where] = self.guard.attempts.get(where, 0) + 1
        return self.guard.attempts[where]

    def _forget(self, record: Any) -> None:
        self.guard.attempts.pop((record.topic, record.partition, record.offset), None)
