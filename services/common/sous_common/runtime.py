"""The runtime every service is composed on: broker, guard, pool, migrations, outbox relay.

A service's `create_app(settings)` builds a `Runtime`, registers its subscribers on
`runtime.broker`, and returns `runtime.app()`. Start-up order matters: the schema is
migrated before the first message is consumed, and the relay starts once the producer can
send. Shutdown first stops taking messages (the subscribers leave their consumer groups, so
other replicas get the partitions at once), then runs the stopping hooks (a service finishes
or reports its work), then publishes what those queued in the outbox, then stops the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from faststream import FastStream
from faststream.kafka import KafkaBroker

from sous_common import metrics, outbox, tracing
from sous_common.commits import GroupCommit
from sous_common.consuming import TRANSIENT, ConsumerGuard
from sous_common.db import AnyConnection, create_pool
from sous_common.kafka import aiokafka_options, make_broker
from sous_common.logs import get_logger
from sous_common.loops import every
from sous_common.migrate import Migration, common_migrations, migrate
from sous_common.ops import OpsServer
from sous_common.relay import RelayProducer
from sous_common.retention import COMMON_RULES, Purger, RetentionSettings, Rule
from sous_common.settings import DatabaseSettings, KafkaSettings, OpsSettings
from sous_common.subscribing import consumer_options, guard_broker
from sous_common.trust import Signer
from sous_contracts.envelope import Envelope

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


def worker_id(service: str) -> str:
    """Return an id for this replica: service, host and process."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}"


@dataclass
class Runtime:
    """Everything a service process shares between its handlers."""

    service: str
    kafka: KafkaSettings
    database: DatabaseSettings | None = None
    schema: str | None = None
    migrations: list[Migration] = field(default_factory=list)
    group_id: str = ""
    signer: Signer | None = None
    """Signs every message this service sends (DESIGN §5.11); None sends them unsigned."""
    retention: tuple[Rule, ...] = ()
    """What the service purges besides the inbox and refused outbox rows (its adapters say)."""
    retention_settings: RetentionSettings | None = None
    """How long records are kept; read from `SOUS_RETENTION_*` when None."""
    ops: OpsSettings | None = None
    """The ops endpoint (`/healthz`, `/readyz`, `/metrics`); read from `SOUS_OPS_*` when None."""
    publish_via: dict[str, outbox.Publisher] = field(default_factory=dict)
    """Full topic name → how the outbox relay publishes its rows, when not to Kafka."""
    pool_close_s: float = 10.0
    """How long stopping waits for the database connections to be given back before it
    closes them anyway."""
    broker: KafkaBroker = field(init=False)
    guard: ConsumerGuard = field(init=False)
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _commits: GroupCommit | None = field(default=None, init=False)
    _relay: outbox.OutboxRelay | None = field(default=None, init=False)
    _relay_task: asyncio.Task[None] | None = field(default=None, init=False)
    _relay_producer: RelayProducer | None = field(default=None, init=False)
    _purger: Purger | None = field(default=None, init=False)
    _purge_task: asyncio.Task[None] | None = field(default=None, init=False)
    relayed: list[Callable[[list[uuid.UUID]], None]] = field(default_factory=list, init=False)
    """Called with the message ids of outbox rows this replica's relay has published (or
    moved aside), once they left the outbox."""
    _opened: list[Hook] = field(default_factory=list, init=False)
    _started: list[Hook] = field(default_factory=list, init=False)
    _stopping: list[Hook] = field(default_factory=list, init=False)
    _scrapes: list[Hook] = field(default_factory=list, init=False)
    _ops_server: OpsServer | None = field(default=None, init=False)
    _serving = False

    def __post_init__(self) -> None:
        # Deployments that share a cluster through topic prefixes get groups of their own.
        self.group_id = self.group_id or f"{self.kafka.topic_prefix}sous-{self.service}"
        self.broker = make_broker(self.kafka, client_id=worker_id(self.service))
        self.guard = guard_broker(self.broker, self.kafka, consumer=self.group_id)
        self.ops = self.ops or OpsSettings()

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's connection pool (after start-up)."""
        if self._pool is None:
            raise RuntimeError(f"{self.service}: the database pool is not open yet")
        return self._pool

    @property
    def commits(self) -> GroupCommit:
        """Small transactions of many handlers committed together (after start-up)."""
        if self._commits is None:
            raise RuntimeError(f"{self.service}: the database pool is not open yet")
        return self._commits

    @property
    def purger(self) -> Purger:
        """The service's retention purger (after start-up)."""
        if self._purger is None:
            raise RuntimeError(f"{self.service}: the database pool is not open yet")
        return self._purger

    def topic(self, topic: Any) -> str:
        """Return a catalog topic's full name in this deployment."""
        return str(topic.full_name(self.kafka.topic_prefix))

    def subscriber_options(self) -> dict[str, Any]:
        """Safe options for `broker.subscriber` in this service's consumer group."""
        return consumer_options(
            self.group_id,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            fetch_max_wait_ms=self.kafka.fetch_max_wait_ms,
        )

    def batch_options(self, max_records: int) -> dict[str, Any]:
        """`subscriber_options` for a subscriber that takes up to `max_records` at a time."""
        return {
            **self.subscriber_options(),
            "batch": True,
            "max_records": max_records,
            "batch_timeout_ms": self.kafka.batch_wait_ms,
        }

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AnyConnection]:
        """A connection in a transaction, traced as the `commit` of what is being handled.

        What `emit` queues in it is written in one statement just before COMMIT.
        """
        with tracing.step("commit"):
            async with outbox.outbox_transaction(self.pool) as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def at_once(self) -> AsyncIterator[AnyConnection]:
        """A connection whose writes and emits go in one statement when the block ends.

        No transaction is around it: the statement is one (`outbox.at_once`), traced as the
        `commit` of what is being handled. It raises `outbox.Conflict` when what it expected
        had changed; then nothing was written.
        """
        assert self.schema is not None, "at_once needs a schema"
        with tracing.step("commit"):
            async with outbox.at_once(self.pool, self.schema) as conn:
                yield conn

    async def emit(
        self,
        conn: AnyConnection,
        messages: Iterable[Envelope],
        records: Iterable[outbox.Record] = (),
    ) -> int:
        """Queue messages in the outbox inside the caller's transaction; return how many.

        `records` are not envelopes (OpenLineage events); they follow them. In a
        `transaction()` (or `commits`) the rows wait for its COMMIT and go in one statement
        with its other emits; on any other connection they are written at once.
        """
        assert self.schema is not None, "emit needs a schema"
        messages = list(messages)
        metrics.note_emitted(messages)
        return await outbox.add(
            conn,
            messages,
            schema=self.schema,
            prefix=self.kafka.topic_prefix,
            signer=self.signer,
            records=records,
        )

    async def outbox_drained(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued in the outbox so far is on the broker.

        For callers that answer a person or a system ("your change is on the changelog"):
        False when the deadline passed first; the messages still follow.
        """
        max_id = await self.pool.fetchval("SELECT max(id) FROM outbox")
        if max_id is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE id <= $1)", max_id
        ):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def publish_now(self, message: Envelope, *, partition: int | None = None) -> None:
        """Publish directly (no state change to keep atomic: heartbeats, tools, marks)."""
        from sous_contracts.topics import topic_for

        value = message.to_json()
        headers = outbox.record_headers(message, value, self.signer)
        headers.update(tracing.current_headers())
        await self.broker.publish(
            value,
            self.topic(topic_for(message)),
            key=message.kafka_key(),
            partition=partition,
            headers=headers,
        )

    async def partitions(self, topic: Any) -> set[int]:
        """Return the partitions of a catalog topic in this deployment (after start-up)."""
        if self._relay_producer is None:
            raise RuntimeError(f"{self.service}: the producer is not started yet")
        return await self._relay_producer.partitions(self.topic(topic))

    def on_opened(self, hook: Hook) -> Hook:
        """Run `hook` once the database is ready, before any message is consumed."""
        self._opened.append(hook)
        return hook

    def on_started(self, hook: Hook) -> Hook:
        """Run `hook` once the broker is started (background loops, timers)."""
        self._started.append(hook)
        return hook

    def on_scrape(self, hook: Hook) -> Hook:
        """Run `hook` before `/metrics` answers (gauges read from the database or memory)."""
        self._scrapes.append(hook)
        return hook

    @property
    def ops_port(self) -> int | None:
        """The port of the ops endpoint once it listens, else None."""
        return self._ops_server.port if self._ops_server is not None else None

    async def readiness(self) -> dict[str, bool]:
        """Return each readiness check by name; the service is ready when all are True.

        `started`: start-up done (migrations, catch-ups, hooks); `consumers`: every
        subscriber has joined its group and holds its assignment; `database`: a query answers.
        """
        checks = {"started": self._serving}
        subscribers = list(self.broker.subscribers)
        checks["consumers"] = bool(subscribers) and all(
            bool(consumers) and all(_joined(c) for c in consumers)
            for consumers in map(_consumers, subscribers)
        )
        if self.database is not None:
            checks["database"] = False
            if self._pool is not None:
                with contextlib.suppress(Exception):
                    checks["database"] = await self._pool.fetchval("SELECT true") is True
        metrics.READY.labels(self.service).set(all(checks.values()))
        return checks

    async def refresh_metrics(self) -> None:
        """Read the gauges read at scrape time: lag, outbox, the service's own."""
        consumers = [c for s in self.broker.subscribers for c in _consumers(s)]
        await metrics.read_lag(self.group_id, consumers, self.guard.positions)
        if self._pool is not None and self.schema is not None:
            async with self._pool.acquire() as conn:
                await metrics.read_outbox(conn, self.schema)
        for hook in self._scrapes:
            await hook()

    async def _serve_ops(self) -> None:
        assert self.ops is not None
        if not self.ops.enabled or self._ops_server is not None:
            return
        server = OpsServer(
            self.ops, asyncio.get_running_loop(), self.readiness, self.refresh_metrics
        )
        port = await asyncio.to_thread(server.start)
        self._ops_server = server
        log.info(
            "ops endpoint listening",
            service=self.service,
            port=port,
            url=f"http://{self.ops.host}:{port}",
        )

    async def _stop_ops(self) -> None:
        if self._ops_server is not None:
            await self._ops_server.stop()
            self._ops_server = None

    def on_stopping(self, hook: Hook) -> Hook:
        """Run `hook` once no more messages are taken, before the outbox and producer stop."""
        self._stopping.append(hook)
        return hook

    async def _open(self) -> None:
        tracing.setup(self.service)
        await self._serve_ops()
        try:
            await self._open_database()
        except BaseException:
            await self._stop_ops()
            raise

    async def _open_database(self) -> None:
        if self.database is None or self.schema is None:
            return
        applied = await self._migrate()
        if applied:
            log.info("migrated", schema=self.schema, applied=applied)
        self._pool = await create_pool(
            self.database, schema=self.schema, application=f"sous-{self.service}"
        )
        self._commits = GroupCommit(self._pool)
        await self._await_broker()
        for hook in self._opened:
            await hook()

    async def _migrate(self) -> list[str]:
        """Migrate the schema, waiting for PostgreSQL while it is not up yet.

        A replica started during a database outage (or before the database, on a fresh
        machine) waits, as its handlers would, rather than exit.
        """
        assert self.database is not None
        assert self.schema is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.database.startup_wait_s
        delay = 0.2
        while True:
            try:
                conn = await asyncpg.connect(
                    self.database.url, timeout=self.database.connect_timeout_s
                )
                try:
                    return await migrate(conn, self.schema, common_migrations() + self.migrations)
                finally:
                    await conn.close()
            except TRANSIENT as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("database not reachable; waiting", error=repr(exc), delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _await_broker(self) -> None:
        """Wait for Kafka while it is not reachable yet, as for PostgreSQL.

        The start-up hooks (a changelog catch-up) and the consumers need the broker; a
        replica started during a broker outage waits for it rather than exit.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.kafka.startup_wait_s
        delay = 0.2
        while True:
            client = AIOKafkaClient(**aiokafka_options(self.kafka))
            try:
                await client.bootstrap()
                return
            except KafkaError as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("broker not reachable; waiting", error=repr(exc), delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await client.close()

    def _relayed(self, message_ids: list[uuid.UUID]) -> None:
        for hook in self.relayed:
            hook(message_ids)

    async def _after_start(self) -> None:
        if self._pool is not None and self.schema is not None:
            self._relay_producer = RelayProducer(self.kafka)
            await self._relay_producer.start()
            self._relay = outbox.OutboxRelay(
                self._pool,
                outbox.routed(self._relay_producer, self.publish_via),
                schema=self.schema,
                prefix=self.kafka.topic_prefix,
                on_relayed=self._relayed,
            )
            self._relay_task = asyncio.create_task(self._relay.run(), name="outbox-relay")
            settings = self.retention_settings or RetentionSettings()
            self._purger = Purger(
                self._pool,
                schema=self.schema,
                rules=COMMON_RULES + self.retention,
                settings=settings,
            )
            self._purge_task = asyncio.create_task(
                every(settings.check_s, self._purger.tick, "retention"), name="retention"
            )
        for hook in self._started:
            await hook()
        self._serving = True
        # What starting built (modules, schemas, models, clients) lives as long as the
        # service: out of the collector's way, a full collection walks only what came after
        # (a full collection walking all of it paused a busy scheduler for 80-100 ms).
        gc.freeze()
        log.info("ready", service=self.service, group=self.group_id, ops_port=self.ops_port)

    async def _stop_consuming(self) -> None:
        """Leave the consumer groups: no message is taken after this returns.

        Offsets of handled messages are committed first, while the consumers can. A handler
        still running is cancelled; its message was not acknowledged, so the partition's next
        owner redelivers it.
        """
        self.guard.close()
        await self.guard.stop()
        for subscriber in self.broker.subscribers:
            await subscriber.stop()
        await self.guard.stop(flush=False)
        log.info("stopped consuming", service=self.service, group=self.group_id)

    async def _before_stop(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()  # a batch cut short rolls back; the timer stays due
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
            self._purge_task = None
        self._serving = False
        await self._stop_consuming()
        for hook in reversed(self._stopping):
            await hook()
        if self._relay is not None and self._relay_task is not None:
            self._relay.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._relay_task, 10)
        if self._relay_producer is not None:
            await self._relay_producer.stop()
            self._relay_producer = None

    async def _close(self) -> None:
        try:
            if self._pool is not None:
                try:
                    await asyncio.wait_for(self._pool.close(), self.pool_close_s)
                except TimeoutError:
                    # A connection still held (a task that never let go) would keep its
                    # session, and any lock or transaction in it, after the service stopped.
                    log.warning(
                        "connections still held at stop; closing them", after_s=self.pool_close_s
                    )
                    self._pool.terminate()
                self._pool = None
        finally:
            await self._stop_ops()
            tracing.shutdown()
            gc.unfreeze()  # a process that goes on (tests, a host) collects it all again

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Run the service inside a block (tests, or a host such as the REST API's lifespan)."""
        await self._open()
        try:
            await self.broker.start()
            try:
                await self._after_start()
                yield self
            finally:
                await self._before_stop()
                await self.broker.stop()
        finally:
            await self._close()

    def app(self) -> FastStream:
        """Return the FastStream application with the start-up and shutdown order wired."""
        return _Application(
            self.broker,
            on_startup=[self._open],
            after_startup=[self._after_start],
            on_shutdown=[self._before_stop],
            after_shutdown=[self._close],
            guard=self.guard,
        )


def _consumers(subscriber: Any) -> list[Any]:
    """The aiokafka consumers of a started subscriber (several with `max_workers`)."""
    group = getattr(subscriber, "consumer_subgroup", None)
    if group:
        return list(group)
    consumer = getattr(subscriber, "consumer", None)
    return [consumer] if consumer is not None else []


def _joined(consumer: Any) -> bool:
    """True when a consumer has joined its group and holds its assignment (maybe empty).

    aiokafka keeps no public flag for "joined with no partitions" (a replica beyond the
    partition count); its subscription state has one, read here with a fallback.
    """
    if consumer is None:
        return False
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    if subscription is None or not hasattr(subscription, "assignment"):
        return bool(consumer.assignment())
    return subscription.assignment is not None


class _Application(FastStream):
    """FastStream whose exit (SIGTERM, SIGINT) closes the guard at once.

    FastStream notices an exit request only on its next poll, a tenth of a second later;
    a message taken in between would be work the stopping replica must then finish.
    """

    def __init__(self, *args: Any, guard: ConsumerGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def exit(self) -> None:
        """Stop handing messages to handlers, then let FastStream shut down."""
        self._guard.close()
        super().exit()
