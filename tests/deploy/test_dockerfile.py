"""deploy/Dockerfile: hadolint's rules, and the few this project holds an image to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(__file__).parents[2] / ".venv" / "bin"))
    hadolint = hadolint or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: it is a dev dependency (`make sync`)")
    done = subprocess.run(
        [hadolint, "--config", str(ROOT / "deploy" / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_base_image_is_a_pinned_slim_python() -> None:
    # hadolint cannot see through `FROM ${PYTHON_IMAGE}`: the ARG's default is checked here.
    (default,) = [
        a.split("=", 1)[1]
        for w, a in instructions()
        if w == "ARG" and a.startswith("PYTHON_IMAGE=")
    ]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", default), (
        default
    )


def test_the_image_runs_as_a_user_without_privileges() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_nothing_is_fetched_by_add() -> None:
    assert not [args for word, args in instructions() if word == "ADD"], "use COPY (or a RUN)"


def test_the_entrypoint_is_the_sous_cli_running_a_service() -> None:
    stage = dict(final_stage())
    assert stage["ENTRYPOINT"] == '["sous"]'
    assert stage["CMD"].startswith('["service",')
    assert any("graphviz" in args for word, args in final_stage() if word == "RUN"), (
        "the console needs Graphviz's dot"
    )


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".tools", ".run"} <= set(ignored)
