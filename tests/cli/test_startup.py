"""`sous --help` and every command start fast: the command tree imports no client or contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sous import runs_cmd
from sous_contracts.common import RunStatus

HEAVY = ("aiokafka", "asyncio", "cryptography", "faststream", "httpx", "pydantic", "sous_contracts")
"""Packages that take a large part of a second to import; commands import them when run."""
HELP = """
import sys
from sous.cli import main
sys.argv = ["sous", "--help"]
try:
    main()
except SystemExit:
    pass
print(" ".join(sys.modules), file=sys.stderr)
"""


def test_help_imports_no_client_and_no_contract(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP],
        capture_output=True,
        text=True,
        check=True,
        env={"SOUS_RUN_DIR": str(tmp_path), "COLUMNS": "120"},
        timeout=60,
    )
    assert "Usage" in done.stdout
    imported = {name.split(".")[0] for name in done.stderr.split()}
    assert not imported & set(HEAVY)


def test_emit_accepts_exactly_the_run_statuses() -> None:
    assert [o.value for o in runs_cmd.Outcome] == [s.value for s in RunStatus]
