"""The envelope every Sous message carries (DESIGN §3), and UUIDv7 message ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sous_contracts.ids import new_message_id as new_message_id  # re-exported


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every contract model: frozen, and readers ignore unknown fields (DESIGN §3)."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)


SCHEMA_MAJOR = 2
"""Major version every message is written with. 2 made the envelope fields below required on
the wire (`WIRE_REQUIRED`); readers still accept 1 (`READ_MAJORS`) when those fields are set."""
READ_MAJORS = frozenset({1, 2})
"""Majors a reader accepts; a message of any other version is dead-lettered, not guessed at."""
WIRE_REQUIRED = ("message_id", "type", "schema_version", "occurred_at")
"""Envelope fields a reader relies on: a message without one is refused, never filled in."""


def _require_on_wire(schema: dict[str, Any]) -> None:
    # Code builds messages with fresh ids and times; on the wire they must be present.
    required = schema.setdefault("required", [])
    required.extend(name for name in WIRE_REQUIRED if name not in required)


class Envelope(Contract):
    """Fields every message carries; each message type adds its payload beside them."""

    model_config = ConfigDict(json_schema_extra=_require_on_wire)

    KEY_FIELD: ClassVar[str] = "order_run_id"
    PLACED: ClassVar[bool] = False
    """True for a message its producer writes to a chosen partition rather than by key."""

    message_id: uuid.UUID = Field(default_factory=new_message_id)
    """Unique id of this message (UUIDv7); consumers deduplicate on it. Required on the wire."""
    type: str
    """Name of the message type, e.g. `StepFinished`."""
    schema_version: int = SCHEMA_MAJOR
    """Major version of this type's schema; only optional fields are added within one."""
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    """When the fact happened or the command was issued (UTC). Required on the wire."""
    producer: str = "unknown"
    """Name of the service or client that produced the message."""
    correlation_id: uuid.UUID | None = None
    """The root order run this message belongs to, across nested and triggered runs."""
    causation_id: uuid.UUID | None = None
    """The `message_id` of the message that caused this one."""

    def kafka_key(self) -> bytes:
        """Return the partition key the topic catalog names for this message."""
        value: Any = getattr(self, self.KEY_FIELD)
        return str(value).encode()

    def caused(self, **fields: Any) -> dict[str, Any]:
        """Return envelope fields for a message caused by this one (same correlation)."""
        return {
            "correlation_id": self.correlation_id,
            "causation_id": self.message_id,
            **fields,
        }

    def to_json(self) -> bytes:
        """Serialise to the JSON bytes put on the wire."""
        return self.model_dump_json().encode()
