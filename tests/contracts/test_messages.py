"""Contract messages: golden samples keep parsing, decoding refuses bad bytes precisely."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from sous_contracts import MESSAGE_TYPES, decode_message, new_message_id
from sous_contracts.errors import UndecodableMessage, UnknownMessageType
from sous_contracts.runs import StartOrderRun
from sous_contracts.steps import StepEventsMark, StepFinished
from sous_contracts.testing import sample_messages
from sous_contracts.topics import CATALOG, STEP_EVENTS, topic_for

GOLDEN = Path(__file__).parent / "golden"


def test_every_message_type_has_a_golden_sample() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
def test_golden_sample_still_parses(path: Path) -> None:
    raw = path.read_bytes()
    message = decode_message(raw)
    assert message.type == path.stem
    # Re-encoding keeps every field the sample had, with its value (fields added later as
    # optional may appear beside them).
    old, new = json.loads(raw), json.loads(message.to_json())
    assert {k: new[k] for k in old} == old


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: m.type)
def test_round_trip_and_key(message) -> None:
    assert decode_message(message.to_json()) == message
    topic = topic_for(message)
    field = topic.key if topic.key in type(message).model_fields else message.KEY_FIELD
    key = message.partition if isinstance(message, StepEventsMark) else getattr(message, field)
    assert message.kafka_key() == str(key).encode()


def test_readers_ignore_unknown_fields() -> None:
    data = json.loads(sample_messages()[0].to_json()) | {"added_in_a_later_minor": 1}
    assert isinstance(decode_message(json.dumps(data).encode()), StartOrderRun)


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"{not json", UndecodableMessage, "not JSON"),
        (b"[1, 2]", UndecodableMessage, "JSON object"),
        (b'{"order_run_id": "x"}', UnknownMessageType, "missing field 'type'"),
        (b'{"type": "Nope"}', UnknownMessageType, "unknown message type 'Nope'"),
    ],
)
def test_decode_refuses_with_reason(raw: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        decode_message(raw)


def test_type_not_carried_by_topic_is_refused() -> None:
    start = sample_messages()[0]
    with pytest.raises(UnknownMessageType, match="not carried by this topic"):
        decode_message(start.to_json(), STEP_EVENTS.message_types())


def test_missing_field_names_the_field() -> None:
    data = json.loads(next(m for m in sample_messages() if m.type == "StepFinished").to_json())
    del data["step_run_id"]
    with pytest.raises(ValidationError, match="step_run_id"):
        decode_message(json.dumps(data).encode())


def test_occurred_at_must_be_aware() -> None:
    data = json.loads(sample_messages()[0].to_json()) | {"occurred_at": "2026-01-01T00:00:00"}
    with pytest.raises(ValidationError, match="occurred_at"):
        decode_message(json.dumps(data).encode())


def test_log_tail_is_bounded() -> None:
    sample = next(m for m in sample_messages() if isinstance(m, StepFinished))
    with pytest.raises(ValidationError, match="log_tail"):
        StepFinished(**(sample.model_dump() | {"log_tail": "x" * 20_000}))


def test_message_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_message_id(now_ms=1_700_000_000_000 + i) for i in range(50)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)


def test_catalog_is_consistent() -> None:
    names = [t.name for t in CATALOG]
    assert len(names) == len(set(names))
    seen = [m for t in CATALOG for m in t.messages]
    assert len(seen) == len(set(seen)), "a message type must live on exactly one topic"
    for topic in CATALOG:
        for cls in topic.messages:
            # A backfill's messages share the order-run topics, keyed by backfill id.
            key = topic.key if topic.key in cls.model_fields else cls.KEY_FIELD
            assert key in cls.model_fields or cls.PLACED, f"{cls.__name__} lacks {topic.key}"
    assert topic_for(StartOrderRun).full_name("staging.") == "staging.sous.commands.order-run"
