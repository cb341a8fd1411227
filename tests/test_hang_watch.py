"""A hanging test ends the run with its name and where its tasks wait (tests/hang_watch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HANGS = """
import asyncio


async def waits_forever() -> None:
    await asyncio.Event().wait()


async def test_hangs() -> None:
    asyncio.create_task(waits_forever(), name="the-stuck-task")
    await asyncio.sleep(3600)
"""


def test_a_hanging_test_ends_the_run_naming_it_and_its_waiting_tasks(tmp_path: Path) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGS)
    # the limit leaves the child time to start its test and the task, even on a busy machine
    done = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "tests.conftest",
                "-p",
                "no:cacheprovider",
            ),
            *("-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(tmp_path)),
        ],
        cwd=ROOT,
        env={**os.environ, "SOUS_TEST_HANG_S": "6"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "test_hangs.py::test_hangs still runs after 6 s: a hang" in done.stderr
    assert "--- task the-stuck-task ---" in done.stderr, done.stderr
    assert "in waits_forever" in done.stderr or "waits_forever()" in done.stderr
