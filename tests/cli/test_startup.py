"""`sous --help` and every command start fast: the command tree imports no client or contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sous import runs_cmd
from sous_contracts.common import RunStatus

HEAVY = frozenset(
    {
        "aiokafka",
        "asyncio",
        "asyncpg",
        "cryptography",
        "faststream",
        "httpx",
        "pydantic",
        "sous_common",
        "sous_contracts",
        "yaml",
    }
)
"""Packages that take a large part of a second to import; commands import them when run."""


def imported_by(argv: list[str], run_dir: Path) -> tuple[str, set[str]]:
    """Run `sous ARGV` as its own process; return its output and the top-level packages it
    imported, as `-X importtime` reports them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sous.cli", *argv],
        capture_output=True,
        text=True,
        check=True,
        env={"SOUS_RUN_DIR": str(run_dir), "COLUMNS": "120", "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return done.stdout, names


TYPER_OWN = frozenset({"pydantic"})
"""What typer itself imports once a command runs: it coerces every parameter of the groups
on the way to the command (even their `--help` flags) with pydantic."""


@pytest.mark.parametrize(
    ("argv", "typers_own"), [(["--help"], frozenset()), (["emit", "--help"], TYPER_OWN)]
)
def test_help_imports_no_client_and_no_contract(
    argv: list[str], typers_own: frozenset[str], tmp_path: Path
) -> None:
    out, imported = imported_by(argv, tmp_path)
    assert "Usage" in out
    assert "typer" in imported  # the report is read: the CLI's own framework shows in it
    assert imported & HEAVY == typers_own


def test_emit_accepts_exactly_the_run_statuses() -> None:
    assert [o.value for o in runs_cmd.Outcome] == [s.value for s in RunStatus]
