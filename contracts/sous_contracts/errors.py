"""Errors the contracts raise when bytes do not make a message.

    ContractError
    ├── UndecodableMessage   not JSON, or not a JSON object
    └── UnknownMessageType   `type` missing, unknown, or not allowed on the topic

Validation failures of a known type are pydantic's own `ValidationError`.
"""


class ContractError(Exception):
    """Base of the contract errors."""


class UndecodableMessage(ContractError):
    """The bytes are not a JSON object."""


class UnknownMessageType(ContractError):
    """The `type` field is missing, unknown, or not allowed on the topic."""
