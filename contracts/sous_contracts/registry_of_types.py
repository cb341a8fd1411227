"""Lookup of message classes by their `type`, and decoding of raw message bytes."""

from __future__ import annotations

import json
from typing import Any

from sous_contracts.envelope import Envelope
from sous_contracts.errors import UndecodableMessage, UnknownMessageType
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


def decode_message(raw: bytes, allowed: tuple[str, ...] | None = None) -> Envelope:
    """Decode and validate one message from its wire bytes.

    Raises UndecodableMessage (not JSON, not an object), UnknownMessageType (a `type`
    not in the catalog, or not allowed on this topic) or pydantic's ValidationError.
    """
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UndecodableMessage(f"expected a JSON object, got {type(data).__name__}")
    type_name = data.get("type")
    if not isinstance(type_name, str):
        raise UnknownMessageType("missing field 'type' (a string naming the message type)")
    if allowed is not None and type_name not in allowed:
        raise UnknownMessageType(
            f"message type {type_name!r} is not carried by this topic (allowed: {list(allowed)})"
        )
    return message_class(type_name).model_validate(data)
