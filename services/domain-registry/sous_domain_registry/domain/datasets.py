"""The dataset view: who writes and reads a dataset, and its latest test health. Pure."""

from __future__ import annotations

from typing import Any

HEALTH = ("failed", "warning", "passed", "untested")
"""Latest health of a dataset, worst first: from the tests of the step that last wrote it."""


def health(status: str, tests: dict[str, int]) -> str:
    """Return the health of what one step wrote, from how it ended and its test counts."""
    if status in ("failed", "lost") or tests.get("failed", 0) or tests.get("errors", 0):
        return "failed"
    if tests.get("warnings", 0):
        return "warning"
    return "passed" if tests.get("passed", 0) or tests.get("logged", 0) else "untested"


def _use(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "domain": row["domain"],
        "recipe": row["recipe"],
        "step": row["step"],
        "kitchen": row["kitchen"],
        "last_run": str(row["order_run_id"]),
        "status": row["status"],
        "tests": row["tests"],
        "at": row["at"].isoformat(),
    }


def view(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one dataset's view from its use rows (newest first)."""
    writers = [r for r in rows if r["role"] == "writes"]
    latest = max(writers, key=lambda r: r["at"]) if writers else None
    return {
        "name": name,
        "writers": [_use(r) for r in writers],
        "readers": [_use(r) for r in rows if r["role"] == "reads"],
        "last_written_by": str(latest["order_run_id"]) if latest else None,
        "last_written_at": latest["at"].isoformat() if latest else None,
        "health": health(latest["status"], latest["tests"]) if latest else "untested",
        "domains": sorted({r["domain"] for r in rows}),
    }


def summary(view_: dict[str, Any]) -> dict[str, Any]:
    """Return the list entry of a dataset: its view without the use details."""
    return {k: v for k, v in view_.items() if k not in ("writers", "readers")}
