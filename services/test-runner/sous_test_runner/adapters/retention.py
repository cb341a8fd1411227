"""What the test-runner purges, and when a row is old enough (`sous_common.retention`)."""

from __future__ import annotations

from sous_common.retention import Rule

SERVICE = "test-runner"

RULES: tuple[Rule, ...] = (
    Rule("test_history", "test_history", "test_history", "measured_at < $1", key="id"),
)
"""The test-runner's retention rules, besides every service's inbox and refused outbox."""


def schema_name() -> str:
    """Return the schema the configured test-runner owns."""
    from sous_test_runner.settings import TestRunnerSettings

    return TestRunnerSettings().db_schema
