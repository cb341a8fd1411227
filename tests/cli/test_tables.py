"""The tables of `sous runs` and `sous status`, and the exit codes of run outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

from sous import query_cmd as q
from tests.cli.render import render

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
RUN = {
    "order_run_id": "01a213a3-474c-7a78-ba69-04b88496cd08",
    "domain": "sales",
    "recipe": "daily",
    "variation": "dev",
    "kitchen": "dev",
    "status": "failed",
    "tests": {"passed": 6, "failed": 1, "errors": 1, "warnings": 2, "logged": 0},
    "started_at": "2026-11-25T11:58:55+00:00",
    "finished_at": "2026-11-25T12:00:00+00:00",
    "steps": [
        {
            "step": "model",
            "attempt": 2,
            "status": "failed",
            "reason": "relation [x] missing",
            "started_at": "2026-11-25T11:59:00+00:00",
            "finished_at": "2026-11-25T11:59:01.5+00:00",
        },
        {
            "step": "publish",
            "attempt": 1,
            "status": "running",
            "started_at": "2026-11-25T11:59:30Z",
        },
    ],
    "test_results": [
        {
            "step": "model",
            "test": "enough_rows",
            "kind": "sql",
            "severity": "error",
            "status": "failed",
            "message": "8 >= 1000000 is false",
        }
    ],
}


def test_durations_and_test_counts():
    assert q.duration(RUN) == "1m05s"
    assert q.duration(RUN["steps"][1], NOW) == "30.0s"
    assert q.duration({"started_at": None}) == "-"
    assert q.duration({"started_at": "2026-11-25T09:00:00Z"}, NOW) == "3h00m"
    assert q.tests_summary(RUN["tests"]) == "6/2/2"
    assert q.tests_summary(None) == "0/0/0"


def test_runs_table_shows_one_row_per_run():
    other = {
        **RUN,
        "order_run_id": "01a213a3-0000-7000-8000-000000000000",
        "status": "running",
        "finished_at": None,
        "tests": {},
    }
    out = render(q.runs_table([RUN, other], NOW))
    lines = [line for line in out.splitlines() if "01a213a3" in line]
    assert len(lines) == 2
    assert all(
        w in lines[0]
        for w in (
            "01a213a3-474c-7a78-ba69-04b88496cd08",
            "sales/daily",
            "failed",
            "2026-11-25 11:58:55",
            "1m05s",
            "6/2/2",
        )
    )
    assert "running" in lines[1]
    assert "1m05s" in lines[1]
    assert "0/0/0" in lines[1]


def test_status_tables_show_steps_with_reasons_and_tests():
    steps = render(q.steps_table(RUN, NOW))
    assert "relation [x] missing" in steps
    assert "1.5s" in steps
    assert "30.0s" in steps
    tests = render(q.tests_table(RUN))
    assert "enough_rows" in tests
    assert "8 >= 1000000 is false" in tests


def test_exit_codes_tell_how_a_run_ended():
    assert [q.exit_code(s) for s in ("succeeded", "failed", "rejected", "cancelled")] == [
        0,
        1,
        1,
        3,
    ]
    assert {q.exit_code(s) for s in ("requested", "queued", "running", None)} == {5}
