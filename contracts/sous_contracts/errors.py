"""Errors the contracts raise when bytes do not make a message.

    ContractError
    ├── UndecodableMessage   not UTF-8 JSON, not an object, or a value no reader can store
    ├── UnknownMessageType   `type` missing, unknown, or not allowed on the topic
    ├── MissingEnvelopeField a field every reader relies on is absent (`message_id` …)
    └── UnsupportedVersion   a `schema_version` this reader does not know

Validation failures of a known type are pydantic's own `ValidationError`.
"""


class ContractError(Exception):
    """Base of the contract errors."""


class UndecodableMessage(ContractError):
    """The bytes are not a strict JSON object (see `sous_contracts.wire`)."""


class UnknownMessageType(ContractError):
    """The `type` field is missing, unknown, or not allowed on the topic."""


class MissingEnvelopeField(ContractError):
    """An envelope field that readers rely on is absent; it is never invented."""


class UnsupportedVersion(ContractError):
    """The message's major `schema_version` is not one this reader handles."""
