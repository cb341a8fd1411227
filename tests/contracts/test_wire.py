"""Strict JSON at the edge: every refusal names what is wrong; fuzzed bytes only get refusals."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sous_contracts import wire
from sous_contracts.common import Outputs
from sous_contracts.errors import (
    MissingEnvelopeField,
    UndecodableMessage,
    UnknownMessageType,
    UnsupportedVersion,
)
from sous_contracts.registry_of_types import decode_message
from sous_contracts.runs import StartOrderRun
from sous_contracts.testing import sample_messages

REFUSALS = (
    UndecodableMessage,
    UnknownMessageType,
    MissingEnvelopeField,
    UnsupportedVersion,
    ValidationError,
)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": -Infinity}', "-Infinity is not JSON"),
        (b'{"a": ' + b"9" * 21 + b"}", "longer than 20 digits"),
        (b'{"a": {"b": "x\\u0000"}}', "a.b: text contains \\u0000"),
        (b'{"a": ["\\ud800"]}', "a.0: text contains an unpaired surrogate"),
        (b'{"a\\u0000": 1}', "text contains \\u0000"),
        (b"[" * 33 + b"]" * 33, "nested deeper than 32"),
        (b"[" * 200_000 + b"]" * 200_000, "nested deeper than 32"),
        (b"\xc3\x28", "not UTF-8: byte 0"),
        (b"{,}", "not JSON"),
    ],
)
def test_loads_refuses_what_no_reader_can_hold(raw: bytes, fragment: str) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.loads(raw)
    assert fragment in str(caught.value)


def test_loads_accepts_what_is_fine() -> None:
    text = '{"a": [1, -2.5, "\\ud83d\\ude00", "caf\\u00e9"], "b": ' + "9" * 20 + "}"
    assert wire.loads(text.encode()) == json.loads(text)
    nested: Any = "x"
    for _ in range(wire.MAX_DEPTH - 1):
        nested = [nested]
    assert wire.loads(json.dumps(nested)) == nested


def test_params_are_bounded_and_storable_naming_the_field() -> None:
    base = json.loads(next(m for m in sample_messages() if m.type == "StartOrderRun").to_json())
    with pytest.raises(ValidationError, match="params: 70010 bytes of JSON, more than the limit"):
        StartOrderRun.model_validate({**base, "params": {"day": "x" * 70_000}})
    with pytest.raises(ValidationError, match=r"params.day: nan is not a finite number"):
        StartOrderRun.model_validate({**base, "params": {"day": float("nan")}})
    with pytest.raises(ValidationError, match=r"values.k: text contains \\u0000"):
        Outputs(values={"k": "a\x00"})


def test_decode_refuses_missing_envelope_fields_and_unknown_majors() -> None:
    good = json.loads(sample_messages()[0].to_json())
    for name in ("message_id", "occurred_at", "schema_version", "type"):
        bad = {k: v for k, v in good.items() if k != name}
        expected = UnknownMessageType if name == "type" else MissingEnvelopeField
        with pytest.raises(expected, match=name if name != "type" else "type"):
            decode_message(json.dumps(bad).encode())
    for version in (0, 3, True, 2.0, "2"):
        with pytest.raises(UnsupportedVersion, match="schema_version"):
            decode_message(json.dumps({**good, "schema_version": version}).encode())
    assert decode_message(json.dumps({**good, "schema_version": 1}).encode()).schema_version == 1


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_fuzzed_bytes_are_only_ever_refused(raw: bytes) -> None:
    with contextlib.suppress(REFUSALS):
        decode_message(raw)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(sample_messages()),
    st.data(),
    JSON,
)
def test_a_mutated_message_decodes_whole_or_is_refused(message: Any, data: Any, value: Any) -> None:
    fields = json.loads(message.to_json())
    name = data.draw(st.sampled_from(sorted(fields)))
    fields[name] = value
    raw = json.dumps(fields, allow_nan=True).encode(errors="surrogatepass")
    try:
        decoded = decode_message(raw)
    except REFUSALS:
        return
    # Whatever was accepted can be stored and sent again by a strict writer.
    wire.loads(decoded.to_json())
