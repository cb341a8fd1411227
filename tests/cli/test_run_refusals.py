"""`sous run` and `sous cancel` refuse, before sending anything, what no scheduler accepts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sous import kafka_io
from sous.cli import app
from sous_contracts.runs import CANCEL_REASON_MAX, IDEMPOTENCY_KEY_MAX


def test_an_idempotency_key_over_the_limit_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[object] = []
    monkeypatch.setattr(kafka_io, "publish", sent.append)
    key = "k" * (IDEMPOTENCY_KEY_MAX + 1)
    result = CliRunner().invoke(app, ["run", "sales/daily", "--idempotency-key", key])
    assert result.exit_code == 2, result.output
    assert (
        f"--idempotency-key is {IDEMPOTENCY_KEY_MAX + 1} characters long; the limit is"
        f" {IDEMPOTENCY_KEY_MAX}" in " ".join(result.output.split())
    )
    assert sent == []
    longest = "k" * IDEMPOTENCY_KEY_MAX
    result = CliRunner().invoke(app, ["run", "sales/daily", "--idempotency-key", longest])
    assert result.exit_code == 0, result.output
    [command] = sent
    assert getattr(command, "idempotency_key", None) == longest


def test_a_cancel_reason_over_the_limit_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[object] = []
    monkeypatch.setattr(kafka_io, "publish", sent.append)
    run = "01a23ca7-074e-7776-89d9-a9833af59c57"
    reason = "r" * (CANCEL_REASON_MAX + 1)
    result = CliRunner().invoke(app, ["cancel", run, "--reason", reason])
    assert result.exit_code == 2, result.output
    assert (
        f"--reason is {CANCEL_REASON_MAX + 1} characters long; the limit is {CANCEL_REASON_MAX}"
        in " ".join(result.output.split())
    )
    assert sent == []
    result = CliRunner().invoke(app, ["cancel", run, "--reason", "r" * CANCEL_REASON_MAX])
    assert result.exit_code == 0, result.output
    assert len(sent) == 1
