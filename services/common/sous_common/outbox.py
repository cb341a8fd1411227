"""The transactional outbox and its relay (DESIGN §5.2).

A service writes its messages with `add()` in the transaction that changes its state; the
relay publishes them in order, woken by LISTEN/NOTIFY with a polling fallback, and deletes
them only after the broker acknowledged every one. One relay per schema is active at a time
(an advisory lock), which keeps each key's messages in order; others wait as standbys.

A row the broker can never take (larger than it accepts, an invalid topic) would block every
row behind it forever. It is moved aside to `outbox_refused` with the reason, and a dead
letter of kind `undeliverable` announces it; the rows behind it flow on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from opentelemetry.trace import Span

from sous_common import metrics, tracing
from sous_common.db import AnyConnection, checked_schema, statements, transaction
from sous_common.logs import get_logger
from sous_common.trust import Signer, signed
from sous_contracts.deadletter import DeadLetter, kept_text
from sous_contracts.envelope import Envelope
from sous_contracts.topics import DEAD_LETTERS, topic_for

log = get_logger(__name__)


class Undeliverable(Exception):
    """A publisher other than Kafka's cannot take a row now; it is moved aside, not retried."""


UNDELIVERABLE: tuple[type[BaseException], ...] = (
    Undeliverable,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
)
"""Broker refusals that no retry can cure: the row is moved aside, not retried."""


def channel(schema: str) -> str:
    """Return the NOTIFY channel of a schema's outbox."""
    return f"sous_outbox_{checked_schema(schema)}"


def record_headers(message: Envelope, value: bytes, signer: Signer | None) -> dict[str, str]:
    """Return a record's headers: its type, and a signature when the service signs.

    Only the types a consumer verifies are signed; signing costs about 60 µs a message.
    """
    headers = {"type": message.type}
    if signer is not None and signed(message.type):
        headers.update(signer.headers(value))
    return headers


@dataclass(frozen=True)
class Record:
    """One record to publish that is not a Sous envelope (an OpenLineage event, say)."""

    message_id: uuid.UUID
    """Identifies the outbox row."""
    topic: str
    """Full topic name, prefix included."""
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    trace: str | None = None
    """The W3C trace context (JSON) the relay's publish continues; None when not traced."""


async def add(
    conn: AnyConnection,
    messages: Iterable[Envelope],
    *,
    schema: str,
    prefix: str = "",
    signer: Signer | None = None,
    records: Iterable[Record] = (),
) -> int:
    """Queue messages, then `records`, in the caller's transaction (one round trip)."""
    envelopes: list[Record] = []
    for m in messages:
        value = m.to_json()
        headers = record_headers(m, value, signer)
        carrier = tracing.carrier_for(m)
        envelopes.append(
            Record(
                m.message_id,
                topic_for(m).full_name(prefix),
                m.kafka_key(),
                value,
                headers,
                json.dumps(carrier) if carrier else None,
            )
        )
    return await add_records(conn, [*envelopes, *records], schema=schema)


async def add_records(conn: AnyConnection, records: Iterable[Record], *, schema: str) -> int:
    """Queue records for publishing, in the caller's transaction; return how many.

    Inside an `outbox_transaction` they wait there to go with its other rows before COMMIT.
    """
    records = list(records)
    tail = _tails.get(id(conn))
    if tail is None:
        await _insert(conn, records, schema)
    else:
        tail.rows.extend((schema, r) for r in records)
    return len(records)


async def at_commit(conn: AnyConnection, sql: str, *args: object) -> None:
    """Run a write just before COMMIT, in one statement with the transaction's outbox rows.

    For writes nothing later in the transaction reads (they are not visible before COMMIT):
    one INSERT, UPDATE or DELETE without RETURNING, its parameters numbered from $1. Outside
    an `outbox_transaction` (or `at_once`) it runs at once.
    """
    tail = _tails.get(id(conn))
    if tail is None:
        await conn.execute(sql, *args)
    else:
        tail.writes.append(_Write(sql, args))


async def expecting(
    conn: AnyConnection,
    sql: str,
    *args: object,
    rows: int,
    then: Callable[[list[dict[str, object]]], None] | None = None,
) -> None:
    """In an `at_once` block: a write that must return exactly `rows` rows, or none is made.

    `sql` is one INSERT, UPDATE or DELETE with a RETURNING list, its parameters numbered
    from $1. When it returns another number of rows (a row changed, a key was taken), the
    whole statement is undone and the block raises `Conflict`. Once the statement ran,
    `then` gets the returned rows (their values as JSON gives them).
    """
    tail = _tails.get(id(conn))
    assert tail is not None, "expecting() belongs in an at_once() block"
    assert tail.at_once, "expecting() belongs in an at_once() block"
    tail.writes.append(_Write(sql, args, rows, then))


class Conflict(Exception):
    """What an `at_once` statement expected was not so; nothing of it was written."""


@dataclass(frozen=True)
class _Write:
    sql: str
    args: tuple[object, ...]
    rows: int | None = None
    """How many rows it must return (`expecting`); None: any."""
    then: Callable[[list[dict[str, object]]], None] | None = None


@dataclass
class _Tail:
    """What an open `outbox_transaction` (or `at_once` block) writes at its end."""

    rows: list[tuple[str, Record]]
    """Outbox rows, with their schema, in the order they were added."""
    writes: list[_Write]
    """`at_commit` and `expecting` writes, in order."""
    at_once: bool = False


_tails: dict[int, _Tail] = {}
"""The tail of each open `outbox_transaction`, by connection id."""


async def _insert(
    conn: AnyConnection,
    records: list[Record],
    schema: str,
    writes: Sequence[_Write] = (),
) -> None:
    """Write outbox rows and wake the relay, with `writes` before them: one statement.

    With `expecting` writes among them, the statement checks their row counts and fails
    as a whole (`Conflict`) when one differs, then hands each its returned rows.
    """
    parts: list[str] = []
    args: list[object] = []
    for w in writes:
        parts.append(f"w{len(parts)} AS ({_numbered_from(w.sql, len(args))})")
        args.extend(w.args)
    expected = [(i, w) for i, w in enumerate(writes) if w.rows is not None]
    columns: list[str] = []
    if expected:
        counts = ", ".join(f"(SELECT count(*) FROM w{i}) = {w.rows}" for i, w in expected)
        columns.append(f"statement_expected(ARRAY[{counts}]) AS ok")
        columns += [f"(SELECT json_agg(w{i}) FROM w{i})::text AS w{i}" for i, _ in expected]
    if records:
        rows = [(r.message_id, r.topic, r.key, r.value, json.dumps(r.headers)) for r in records]
        values: list[object] = [list(column) for column in zip(*rows, strict=True)]
        traces = [r.trace for r in records]
        template = _ADD
        if any(traces):  # without traces, the statement of old
            template = _ADD_TRACED
            values.append(traces)
        first = len(args) + 1
        parts.append(template.format(*range(first, first + len(values))))
        args.extend([*values, channel(schema)])
        # NOTIFY is delivered at commit, so the relay wakes exactly when the rows are visible.
        wake = f"SELECT pg_notify(${len(args)}, '') FROM (SELECT 1 FROM added LIMIT 1) x"
    elif parts:
        wake = "SELECT 1"
    else:
        return
    if not expected:
        await conn.execute(f"WITH {', '.join(parts)} {wake}", *args)
        return
    if records:
        columns.append(f"({wake}) IS NOT NULL AS woken")
    try:
        row = await conn.fetchrow(f"WITH {', '.join(parts)} SELECT {', '.join(columns)}", *args)
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
        raise Conflict(str(exc)) from exc
    assert row is not None
    for i, w in expected:
        if w.then is not None:
            w.then(json.loads(row[f"w{i}"] or "[]"))


def _numbered_from(sql: str, offset: int) -> str:
    """`sql` with its parameters $1, $2 … renumbered to follow `offset` others."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + offset}", sql)


@contextlib.asynccontextmanager
async def outbox_transaction(pool: asyncpg.Pool) -> AsyncIterator[AnyConnection]:
    """`db.transaction` whose outbox rows are written in one statement just before COMMIT.

    Each insert into the outbox is a round trip, and a batch transaction adds many. Here
    they wait and go together, in the order they were added (so their ids keep it), with
    the `at_commit` writes; a transaction that fails writes none. A savepoint inside it is
    taken with `savepoint`.
    """
    async with transaction(pool) as conn:
        tail = _tails[id(conn)] = _Tail([], [])
        try:
            yield conn
            writes: list[_Write] = tail.writes
            for schema, rows in itertools.groupby(tail.rows, key=lambda q: q[0]):
                await _insert(conn, [r for _, r in rows], schema, writes)
                writes = []
            if writes:
                await _insert(conn, [], "", writes)
        finally:
            del _tails[id(conn)]


@contextlib.asynccontextmanager
async def at_once(pool: asyncpg.Pool, schema: str) -> AsyncIterator[AnyConnection]:
    """A connection whose writes all go in one statement, with no transaction around it.

    `add`, `at_commit` and `expecting` in the block only queue; when it ends they are sent
    as one statement, which PostgreSQL runs as a transaction of its own: one round trip
    where BEGIN, the writes and COMMIT take one each. Nothing read in the block sees them.
    Its outbox rows must all be of `schema`. An `expecting` write that finds other rows
    than it expects undoes the whole statement and raises `Conflict`.
    """
    async with statements(pool) as conn:
        tail = _tails[id(conn)] = _Tail([], [], at_once=True)
        try:
            yield conn
            assert all(s == schema for s, _ in tail.rows), "at_once() writes one schema"
            await _insert(conn, [r for _, r in tail.rows], schema, tail.writes)
        finally:
            del _tails[id(conn)]


@contextlib.asynccontextmanager
async def savepoint(conn: AnyConnection) -> AsyncIterator[None]:
    """`conn.transaction()` nested in a transaction; rolled back, it drops what it queued."""
    tail = _tails.get(id(conn))
    rows, writes = (len(tail.rows), len(tail.writes)) if tail is not None else (0, 0)
    try:
        async with conn.transaction():
            yield
    except BaseException:
        if tail is not None:
            del tail.rows[rows:]
            del tail.writes[writes:]
        raise


async def pending(conn: AnyConnection, message_id: uuid.UUID) -> bool:
    """Return whether a message is still in the outbox, not yet acknowledged by the broker."""
    tail = _tails.get(id(conn))
    if tail is not None and any(r.message_id == message_id for _, r in tail.rows):
        return True  # queued in the transaction of `conn`, written at its COMMIT
    return bool(await conn.fetchval("SELECT 1 FROM outbox WHERE message_id = $1", message_id))


_ADD = (
    "added AS (INSERT INTO outbox (message_id, topic, key, payload, headers)"
    " SELECT * FROM unnest(${}::uuid[], ${}::text[], ${}::bytea[], ${}::bytea[], ${}::jsonb[])"
    " RETURNING 1)"
)
_ADD_TRACED = (
    "added AS (INSERT INTO outbox (message_id, topic, key, payload, headers, trace_context)"
    " SELECT * FROM unnest(${}::uuid[], ${}::text[], ${}::bytea[], ${}::bytea[], ${}::jsonb[],"
    " ${}::jsonb[]) RETURNING 1)"
)
"""The outbox rows' part of the statement, with their parameters' numbers to fill in."""


class Publisher(Protocol):
    """Sends one record and returns an awaitable that completes when the broker acked it."""

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        """Start sending; the returned awaitable completes on the broker's ack."""


def routed(default: Publisher, routes: Mapping[str, Publisher]) -> Publisher:
    """A publisher that sends the topics in `routes` their own way, the rest to `default`."""
    if not routes:
        return default

    async def publish(
        topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        return await routes.get(topic, default)(topic, key, value, headers)

    return publish


class OutboxRelay:
    """Publishes a schema's outbox rows; run `run()` as a task for the life of the service."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publisher,
        *,
        schema: str,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        on_published: Callable[[int], None] | None = None,
        on_relayed: Callable[[list[uuid.UUID]], None] | None = None,
        prefix: str = "",
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._schema = checked_schema(schema)
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._on_published = on_published
        self._on_relayed = on_relayed
        self._dead_letters = DEAD_LETTERS.full_name(prefix)
        self._acked: list[int] = []
        """Ids of rows the broker acknowledged, read on the lock holder, not deleted yet."""

    async def drain_once(self, holder: AnyConnection | None = None) -> int:
        """Publish up to one batch; return how many rows were published or moved aside.

        `holder` is the connection that holds this schema's relay lock (`run()` passes its
        own): no other relay reads the rows then, so they are read and deleted in statements
        of their own, without a transaction around the publish (two round trips fewer per
        batch). The rows the broker acknowledged are deleted by the next read, in its
        statement, or by `forget_acked`. Without `holder`, the rows are locked in a
        transaction of a pooled connection and deleted in it.
        """
        if holder is not None:
            return await self._relay(holder, "")
        async with transaction(self._pool) as conn:
            return await self._relay(conn, " FOR UPDATE SKIP LOCKED")

    async def forget_acked(self, holder: AnyConnection) -> None:
        """Delete the rows the broker acknowledged that no read has deleted yet."""
        if self._acked:
            await holder.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", self._acked)
            self._acked = []

    async def _relay(self, conn: AnyConnection, locking: str) -> int:
        columns = "id, message_id, topic, key, payload, headers, created_at, trace_context"
        if self._acked and not locking:  # the last batch's delete and this read: one trip
            rows = await conn.fetch(
                "WITH acked AS (DELETE FROM outbox WHERE id = ANY($2::bigint[]))"
                f" SELECT {columns} FROM outbox WHERE id <> ALL($2::bigint[])"
                " ORDER BY id LIMIT $1",
                self._batch_size,
                self._acked,
            )
            self._acked = []
        else:
            rows = await conn.fetch(
                f"SELECT {columns} FROM outbox ORDER BY id LIMIT $1{locking}", self._batch_size
            )
        if not rows:
            return 0
        sent: list[tuple[asyncpg.Record, Awaitable[object]]] = []
        refused: list[tuple[asyncpg.Record, BaseException]] = []
        spans: dict[int, Span] = {}
        for r in rows:
            headers = json.loads(r["headers"])
            if r["trace_context"] is not None:
                headers.update(self._traced(r, headers, spans))
            try:
                ack = await self._publish(r["topic"], r["key"], r["payload"], headers)
            except UNDELIVERABLE as exc:
                if (span := spans.pop(r["id"], None)) is not None:
                    tracing.ended(span, exc)
                refused.append((r, exc))
            else:
                sent.append((r, ack))
        outcomes = await asyncio.gather(*(ack for _, ack in sent), return_exceptions=True)
        for (r, _), outcome in zip(sent, outcomes, strict=True):
            if (span := spans.pop(r["id"], None)) is not None:
                tracing.ended(span, outcome if isinstance(outcome, BaseException) else None)
            if isinstance(outcome, UNDELIVERABLE):
                refused.append((r, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome  # transient: the whole batch is retried, consumers dedup
        ids = [r["id"] for r in rows]
        if refused:  # moved aside and deleted together, or not at all
            async with conn.transaction():
                await self._move_aside(conn, refused)
                await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        elif locking:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        else:
            self._acked = ids  # deleted with the next read, or when the relay goes idle
        metrics.relayed(self._schema, (r["created_at"] for r in rows))
        if refused:
            metrics.dead_lettered(f"outbox:{self._schema}", "undeliverable", len(refused))
        if self._on_published:
            self._on_published(len(rows))
        if self._on_relayed:
            self._on_relayed([r["message_id"] for r in rows])
        return len(rows)

    @staticmethod
    def _traced(
        row: asyncpg.Record, headers: dict[str, str], spans: dict[int, Span]
    ) -> dict[str, str]:
        """The trace headers of a row: its `publish` span's, or as stored when tracing is off."""
        stored: dict[str, str] = json.loads(row["trace_context"])
        span = tracing.publishing(row["topic"], headers.get("type", "message"), stored)
        if span is None:
            return stored
        spans[row["id"]] = span
        return tracing.headers_of(span)

    async def _move_aside(
        self, conn: AnyConnection, refused: list[tuple[asyncpg.Record, BaseException]]
    ) -> None:
        letters = []
        for r, exc in refused:
            reason = f"undeliverable to {r['topic']}: {type(exc).__name__}: {exc}"
            await conn.execute(
                "INSERT INTO outbox_refused"
                " (id, message_id, topic, key, payload, headers, created_at, reason)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                r["id"],
                r["message_id"],
                r["topic"],
                r["key"],
                r["payload"],
                r["headers"],
                r["created_at"],
                reason,
            )
            log.error(
                "outbox row undeliverable; moved aside",
                schema=self._schema,
                message_id=str(r["message_id"]),
                topic=r["topic"],
                size=len(r["payload"]),
                reason=reason,
            )
            payload: bytes = r["payload"]
            letter = DeadLetter(
                producer=f"outbox:{self._schema}",
                reason=reason,
                error_kind="undeliverable",
                source_topic=r["topic"],
                source_partition=-1,
                source_offset=-1,
                consumer=f"outbox:{self._schema}",
                key=kept_text(r["key"]) if r["key"] else None,
                payload=kept_text(payload),
                payload_size=len(payload),
                headers=json.loads(r["headers"]),
            )
            letters.append(
                await self._publish(
                    self._dead_letters,
                    letter.kafka_key(),
                    letter.to_json(),
                    {"type": letter.type},
                )
            )
        await asyncio.gather(*letters)  # a failure here rolls back: moved aside on retry

    async def drain(self) -> int:
        """Publish until the outbox is empty; return how many rows were published."""
        total = 0
        while n := await self.drain_once():
            total += n
        return total

    async def run(self) -> None:
        """Hold the relay lock, then publish forever; transient failures retry with backoff."""
        backoff = 0.1
        while not self._stopping:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return  # the relay must outlive any outage or bug in one row
                log.warning(
                    "outbox relay failed; retrying",
                    schema=self._schema,
                    error=repr(exc),
                    backoff_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _serve(self) -> None:
        conn = await self._pool.acquire()
        lost = False

        def on_lost(_: object) -> None:
            nonlocal lost
            lost = True  # asyncpg has taken the connection back; it must not be used again
            self._wake.set()

        conn.add_termination_listener(on_lost)
        listening = False
        try:
            lock_key = f"sous-outbox:{self._schema}"
            # Another replica holds the lock and relays; wait as a standby.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):  # stop() wakes a standby at once
                    async with asyncio.timeout(self._poll_interval_s):
                        await self._wake.wait()
            await conn.add_listener(channel(self._schema), self._notified)
            listening = True
            log.info("outbox relay active", schema=self._schema)
            while True:
                self._wake.clear()
                if lost:  # with it went the lock: relay again only once it is held again
                    raise ConnectionResetError("the relay's lock connection was lost")
                # A short batch was the last: what commits after its read wakes us again,
                # so no empty read closes each round (three statements, under load often).
                while await self.drain_once(conn) == self._batch_size:
                    pass
                if self._stopping or not self._wake.is_set():
                    await self.forget_acked(conn)  # else the next read deletes them
                if self._stopping:  # after one last drain: what shutdown queued goes out
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval_s):
                        await self._wake.wait()
        finally:
            if not lost:  # a lost connection's lock and listener went with its session
                if listening:
                    await conn.remove_listener(channel(self._schema), self._notified)
                conn.remove_termination_listener(on_lost)
                await self._pool.release(conn, timeout=5)

    def stop(self) -> None:
        """Publish what is queued now (when this replica relays), then return from `run()`."""
        self._stopping = True
        self._wake.set()

    def _notified(self, *_: object) -> None:
        self._wake.set()
