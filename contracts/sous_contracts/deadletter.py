"""The dead-letter record for messages a consumer could not accept."""

from __future__ import annotations

from typing import ClassVar, Literal

from sous_contracts.envelope import Envelope

PAYLOAD_KEEP_MAX = 65_536
"""Bytes of the original payload kept in a dead letter (oversized ones are cut)."""


def kept_text(raw: bytes | None, limit: int = PAYLOAD_KEEP_MAX) -> str:
    """Return bytes a dead letter quotes as text any strict reader accepts.

    Cut to `limit` bytes, decoded as UTF-8 with replacement, NUL shown as U+FFFD: the
    quote of a hostile record must not itself be refused by the wire checks.
    """
    return (raw or b"")[:limit].decode(errors="replace").replace("\x00", "\ufffd")


class DeadLetter(Envelope):
    """A message that was not accepted, the reason, and where it came from."""

    KEY_FIELD: ClassVar[str] = "source_topic"

    type: Literal["DeadLetter"] = "DeadLetter"
    reason: str
    """Why it was refused: which field, what was expected."""
    error_kind: Literal[
        "undecodable",
        "invalid",
        "unknown_type",
        "oversized",
        "handler_error",
        "unsupported_version",
        "unauthorized",
        "undeliverable",
    ]
    """Category of the refusal."""
    source_topic: str
    """Topic it was read from."""
    source_partition: int
    """Partition it was read from."""
    source_offset: int
    """Offset it was read at."""
    consumer: str
    """Consumer group that refused it."""
    key: str | None = None
    """Original key, decoded as UTF-8 with replacement."""
    payload: str
    """Original value (UTF-8 with replacement), cut to `PAYLOAD_KEEP_MAX` bytes."""
    payload_size: int
    """Size of the original value in bytes."""
    headers: dict[str, str] = {}
    """Original headers."""
