"""The commands the README and `sous up` give a newcomer run in a fresh checkout after `make`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sous import stack

ROOT = Path(__file__).resolve().parents[2]


def test_sous_up_names_the_cli_that_make_installed() -> None:
    commands = [line.split("#")[0].strip() for line in stack.NEXT_STEPS.splitlines()]
    named = [c for c in commands if c and not c.startswith(("Try", "Ctrl-C"))]
    assert named
    for command in named:
        assert command.startswith(f"{stack.CLI} "), command
    assert os.access(ROOT / stack.CLI, os.X_OK)


def test_the_readme_names_the_same_cli() -> None:
    readme = (ROOT / "README.md").read_text()
    runs = re.findall(r"^\$ (.*\bsous\b.*)$", readme, flags=re.MULTILINE)
    assert runs
    for command in runs:
        assert command.startswith(f"{stack.CLI} "), command
    assert not re.search(r"^(\$ )?uv run sous", readme, flags=re.MULTILINE)
