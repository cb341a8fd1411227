"""Lookup of message classes by their `type`, and decoding of raw message bytes."""

from __future__ import annotations

from typing import Any

from sous_contracts import wire
from sous_contracts.envelope import READ_MAJORS, WIRE_REQUIRED, Envelope
from sous_contracts.errors import (
    MissingEnvelopeField,
    UndecodableMessage,
    UnknownMessageType,
    UnsupportedVersion,
)
from sous_contracts.topics import CATALOG

MESSAGE_TYPES: dict[str, type[Envelope]] = {
    str(cls.model_fields["type"].default): cls for topic in CATALOG for cls in topic.messages
}
"""Every message class of the catalog, by its `type` string."""


def message_class(type_name: str) -> type[Envelope]:
    """Return the class for a `type` string, or raise UnknownMessageType."""
    try:
        return MESSAGE_TYPES[type_name]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {type_name!r}") from None


def decode_message(
    raw: bytes, allowed: tuple[str, ...] | None = None, *, max_bytes: int = wire.MAX_MESSAGE_BYTES
) -> Envelope:
    r"""Decode and validate one message from its wire bytes, strictly (DESIGN §5.9).

    Raises:
        UndecodableMessage: oversized, not UTF-8, not strict JSON (NaN, deep, huge numbers,
            `\\u0000`, unpaired surrogates), or not an object.
        UnknownMessageType: `type` missing, not in the catalog, or not allowed on this topic.
        MissingEnvelopeField: `message_id`, `schema_version` or `occurred_at` absent.
        UnsupportedVersion: a major `schema_version` outside `READ_MAJORS`.
        pydantic.ValidationError: the fields do not fit the type.
    """
    if len(raw) > max_bytes:
        raise UndecodableMessage(f"oversized: {len(raw)} bytes > limit {max_bytes}")
    try:
        data: Any = wire.loads(raw)
    except wire.WireError as exc:
        raise UndecodableMessage(str(exc)) from None
    if not isinstance(data, dict):
        raise UndecodableMessage(f"expected a JSON object, got {type(data).__name__}")
    type_name = data.get("type")
    if not isinstance(type_name, str):
        raise UnknownMessageType("missing field 'type' (a string naming the message type)")
    if allowed is not None and type_name not in allowed:
        raise UnknownMessageType(
            f"message type {type_name!r} is not carried by this topic (allowed: {list(allowed)})"
        )
    cls = message_class(type_name)
    if missing := [name for name in WIRE_REQUIRED if data.get(name) is None]:
        raise MissingEnvelopeField(f"{type_name}: missing required field(s) {', '.join(missing)}")
    version = data["schema_version"]
    if type(version) is not int or version not in READ_MAJORS:
        raise UnsupportedVersion(
            f"{type_name}: schema_version {version!r} is not readable here "
            f"(this reader handles {sorted(READ_MAJORS)})"
        )
    return cls.model_validate(data)
