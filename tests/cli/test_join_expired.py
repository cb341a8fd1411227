"""An expired join window in `sous runs` and `sous status`: shown, and an outcome that failed."""

from __future__ import annotations

from sous import query_cmd as q
from tests.cli.render import render

EXPIRED = {
    "order_run_id": "01a213a3-474c-7a78-ba69-04b88496cd09",
    "domain": "finance",
    "recipe": "revenue",
    "variation": None,
    "kitchen": "prod",
    "status": "join-expired",
    "tests": {},
    "started_at": None,
    "finished_at": "2026-11-25T12:00:00+00:00",
}


def test_an_expired_join_is_listed_and_ends_sous_status_with_1() -> None:
    assert "join-expired" in render(q.runs_table([EXPIRED]))
    assert q.exit_code("join-expired") == 1
