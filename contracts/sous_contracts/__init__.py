"""Sous contracts: the messages, topics and spec models every Sous service and client shares."""

from sous_contracts.envelope import Envelope, new_message_id
from sous_contracts.registry_of_types import MESSAGE_TYPES, decode_message, message_class

__all__ = ["MESSAGE_TYPES", "Envelope", "decode_message", "message_class", "new_message_id"]
