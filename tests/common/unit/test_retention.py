"""The pure parts of retention: cutoffs, settings and the batch statements a rule makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from pydantic import ValidationError

from sous_common.retention import Kind, RetentionSettings, Rule, cutoff
from sous_contracts.topics import CATALOG

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, None),  # kept forever
        (1, NOW - timedelta(days=1)),
        (0.5, NOW - timedelta(hours=12)),
        (90, NOW - timedelta(days=90)),
    ],
)
def test_cutoff(days: float, expected: datetime | None) -> None:
    assert cutoff(NOW, days) == expected


def test_every_kind_has_a_setting_read_from_the_environment(monkeypatch) -> None:
    for kind in get_args(Kind):
        monkeypatch.setenv(f"SOUS_RETENTION_{kind.upper()}_DAYS", "7")
    settings = RetentionSettings()
    assert {kind: settings.days(kind) for kind in get_args(Kind)} == dict.fromkeys(
        get_args(Kind), 7
    )


def test_defaults_keep_audit_forever_and_the_rest_for_a_while() -> None:
    settings = RetentionSettings()
    assert settings.days("audit") == 0
    assert all(settings.days(k) > 0 for k in get_args(Kind) if k != "audit")


def test_negative_days_are_refused(monkeypatch) -> None:
    monkeypatch.setenv("SOUS_RETENTION_RUNS_DAYS", "-1")
    with pytest.raises(ValidationError):
        RetentionSettings()


def test_a_rule_deletes_one_bounded_batch_and_its_cascade() -> None:
    rule = Rule(
        "runs", "runs", "runs", "finished_at < $1", key="id", cascade=(("steps", "run_id"),)
    )
    assert rule.count_sql() == "SELECT count(*) FROM runs WHERE finished_at < $1"
    sql = rule.delete_sql()
    assert "LIMIT $2 FOR UPDATE SKIP LOCKED" in sql
    assert "DELETE FROM steps WHERE run_id = ANY(ARRAY(SELECT k FROM doomed))" in sql
    assert sql.endswith("SELECT count(*) FROM gone")
    assert "SELECT id AS k FROM runs WHERE finished_at < $1" in sql


def test_a_rule_without_a_key_deletes_by_row_address() -> None:
    sql = Rule("inbox", "inbox", "inbox", "received_at < $1").delete_sql()
    assert "SELECT ctid AS k FROM inbox" in sql
    assert "WHERE ctid = ANY(ARRAY(SELECT k FROM doomed))" in sql


def test_every_topic_of_the_catalog_says_how_long_it_keeps_records() -> None:
    for topic in CATALOG:
        if topic.cleanup == "delete":
            assert topic.retention_ms, topic.name
            assert topic.config()["retention.ms"] == str(topic.retention_ms)
        else:  # compacted: the latest record per key stays; tombstones for a while
            assert topic.retention_ms is None, topic.name
            assert topic.delete_retention_ms, topic.name
    # Dedup outlives every topic: a redelivered message is still recognised.
    longest_days = max(t.retention_ms or 0 for t in CATALOG) / 86_400_000
    settings = RetentionSettings()
    assert settings.inbox_days > longest_days
    assert settings.firings_days > longest_days
