"""The one decode path at the edge of every consumer: record → contract, or a refusal.

Bytes, headers, JSON, schema and `schema_version` are all checked here (DESIGN §5.9), by
the consumer guard for subscribers and by every reader that consumes without one (the
changelog catch-up), so a record is accepted or refused the same way wherever it is read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from faststream.message import StreamMessage
from pydantic import ValidationError

from sous_contracts import wire
from sous_contracts.envelope import Envelope
from sous_contracts.errors import (
    MissingEnvelopeField,
    UndecodableMessage,
    UnknownMessageType,
    UnsupportedVersion,
)
from sous_contracts.registry_of_types import decode_message

MAX_HEADERS = 32
"""Most headers a record may carry."""
MAX_HEADER_BYTES = 16_384
"""Most bytes of header keys and values together."""


class Refusal(Exception):
    """A record cannot be accepted; `kind` is the dead letter's `error_kind`.

    `event`, when set, is published beside the dead letter so the sender learns of it
    (an OrderRunRejected for a refused run command).
    """

    def __init__(self, reason: str, kind: str, *, event: Envelope | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.event = event


def explain(exc: ValidationError) -> str:
    """Turn a pydantic error into one line naming each field and what was expected."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return f"invalid {exc.title}: " + "; ".join(parts)


def header_problem(headers: Any) -> str | None:
    """Return what is wrong with a record's headers, or None when they are fine."""
    headers = list(headers or ())
    if len(headers) > MAX_HEADERS:
        return f"{len(headers)} headers, more than the limit of {MAX_HEADERS}"
    size = 0
    for key, value in headers:
        if value is None:
            return f"header {key!r} has no value"
        try:
            value.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            return f"header {key!r} is not UTF-8 text"
        size += len(str(key).encode(errors="replace")) + len(value)
    if size > MAX_HEADER_BYTES:
        return f"headers take {size} bytes, more than the limit of {MAX_HEADER_BYTES}"
    return None


def decode_record(
    record: Any, allowed: tuple[str, ...] | None, max_bytes: int = wire.MAX_MESSAGE_BYTES
) -> Envelope:
    """Return the contract a consumer record carries.

    Raises:
        Refusal: with the reason and kind to dead-letter it under; never anything else.
    """
    try:
        if problem := header_problem(record.headers):
            raise Refusal(f"bad headers: {problem}", "undecodable")
        value = record.value
        if value is None:
            raise Refusal("no value (a tombstone or an empty record)", "undecodable")
        if len(value) > max_bytes:
            raise Refusal(f"oversized: {len(value)} bytes > limit {max_bytes}", "oversized")
        return decode_message(value, allowed, max_bytes=max_bytes)
    except Refusal:
        raise
    except UndecodableMessage as exc:
        raise Refusal(f"undecodable: {exc}", "undecodable") from None
    except UnknownMessageType as exc:
        raise Refusal(str(exc), "unknown_type") from None
    except MissingEnvelopeField as exc:
        raise Refusal(str(exc), "invalid") from None
    except UnsupportedVersion as exc:
        raise Refusal(str(exc), "unsupported_version") from None
    except ValidationError as exc:
        raise Refusal(explain(exc), "invalid") from None
    except Exception as exc:  # whatever else bytes can provoke is still a refusal
        raise Refusal(f"undecodable: {type(exc).__name__}: {exc}", "undecodable") from None


_DECODED = "_sous_envelope"


def remember(msg: StreamMessage[Any], decoded: Envelope | list[Envelope]) -> None:
    """Keep the guard's decoded contract (a list for a batch) for the handler (decoded once)."""
    setattr(msg, _DECODED, decoded)


async def tolerant_parser(record: Any, original: Any) -> StreamMessage[Any]:
    """FastStream parser that never fails on headers, so the guard sees every record.

    FastStream decodes header values as UTF-8 before any middleware runs; a binary or null
    value would drop the record unhandled. Such a record is parsed with neutralised headers
    and keeps the original as `raw_message` (a batch keeps its original records), which the
    guard then refuses.
    """
    # A batch is a tuple from aiokafka, a list from FastStream's TestKafkaBroker.
    batch = isinstance(record, tuple | list)
    records = record if batch else (record,)
    if all(header_problem(r.headers) is None for r in records):
        return await original(record)  # type: ignore[no-any-return]
    clean = tuple(
        r if header_problem(r.headers) is None else dataclasses.replace(r, headers=())
        for r in records
    )
    msg: StreamMessage[Any] = await original(clean if batch else clean[0])
    msg.raw_message = record
    return msg


async def remembered_decoder(msg: StreamMessage[Any], original: Any) -> Any:
    """FastStream decoder that hands the handler the contract the guard already decoded."""
    decoded = getattr(msg, _DECODED, None)
    return decoded if decoded is not None else await original(msg)
