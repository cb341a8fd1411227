"""Warm python steps: forked from a warm parent, yet the same as a fresh interpreter."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sous_contracts.common import StepStatus
from sous_contracts.steps import CancelStep, ExecuteStep
from tests.executor.conftest import execute
from tests.executor.integration.test_kinds_noop_shell import _alive

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MODULE = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time

    LIBRARY_WAS_LOADED = "xml.dom.minidom" in sys.modules
    import xml.dom.minidom  # a library the parent learns to load

    def probe(day):
        folder = os.path.dirname(os.environ["SOUS_OUTPUTS"])
        print("token is", os.environ["SOUS_SECRET_TOKEN"])
        with open(os.environ["SOUS_OUTPUTS"], "w") as f:
            json.dump({"values": {"from_file": day}}, f)
        varying = {"SOUS_ORDER_RUN_ID", "SOUS_STEP_RUN_ID"}
        env = {
            k: v.replace(folder, "<work>")
            for k, v in os.environ.items() if k not in varying
        }
        return {
            "env": env,
            "cwd_is_work": os.getcwd() == folder,
            "path_head": [p.replace(folder, "<work>") for p in sys.path[:3]],
            "token": os.environ["SOUS_SECRET_TOKEN"],
            "ppid": os.getppid(),
            "library_was_loaded": LIBRARY_WAS_LOADED,
        }

    def sleeper(pidfile, ignore_term=False):
        if ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen(["sleep", "300"])
        with open(pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {grandchild.pid} {os.getppid()}")
        os.rename(pidfile + ".tmp", pidfile)
        time.sleep(300)

    def nap(marker=None):
        if marker:
            open(marker, "w").close()
        time.sleep(1)
        return {"napped": True}
    """
)


@pytest.fixture
def steps_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "sous_warm_steps.py").write_text(MODULE)
    return folder


@pytest.fixture
async def warm_executor(start_executor, steps_folder: Path, monkeypatch):
    monkeypatch.setenv("SOUS_SECRET_SALES__TOKEN", "s3cr3t-value")
    async with start_executor(python_path=(str(steps_folder),)) as ex:
        yield ex


def _python(function: str, cold: bool = False, **fields: Any) -> ExecuteStep:
    spec: dict[str, Any] = {"function": f"sous_warm_steps:{function}", **fields.pop("spec", {})}
    if cold:
        spec["cold"] = True
    return execute("python", spec, **fields)


def _probe(cold: bool = False) -> ExecuteStep:
    return _python(
        "probe",
        cold,
        spec={"kwargs": {"day": "2026-01-01"}},
        params={"day": "2026-01-01"},
        secrets=["token"],
    )


async def _pids(pidfile: Path, harness) -> tuple[int, int, int]:
    text = await harness.wait_for(lambda: pidfile.exists() and pidfile.read_text())
    child, grandchild, parent = map(int, text.split())
    return child, grandchild, parent


async def test_a_warm_step_sees_what_a_cold_one_sees(harness, warm_executor) -> None:
    warm = await harness.run(_probe())
    cold = await harness.run(_probe(cold=True))
    assert warm.status is cold.status is StepStatus.SUCCEEDED, (warm.error, cold.error)
    warm_values, cold_values = dict(warm.outputs.values), dict(cold.outputs.values)
    # Forked from the warm parent, not started by the executor (this process).
    assert warm_values.pop("ppid") != os.getpid()
    assert cold_values.pop("ppid") == os.getpid()
    warm_values.pop("library_was_loaded")
    cold_values.pop("library_was_loaded")
    assert warm_values == cold_values
    assert warm_values["token"] == "***"
    assert warm_values["env"]["SOUS_PARAM_DAY"] == "2026-01-01"
    assert warm_values["cwd_is_work"] is True
    assert warm.outputs.datasets == cold.outputs.datasets
    assert warm.log_tail == cold.log_tail == "token is ***\n"


async def test_the_parent_learns_libraries_but_never_keeps_the_domain_code(
    harness, warm_executor, steps_folder: Path
) -> None:
    # Barrier: the parent loads what a step imported between forks; ask until it has.
    async with asyncio.timeout(20):
        while not (await harness.run(_probe())).outputs.values["library_was_loaded"]:
            pass
    module = steps_folder / "sous_warm_steps.py"
    module.write_text(module.read_text() + "\ndef nap():\n    return {'version': 2}\n")
    changed = await harness.run(_python("nap"))
    assert changed.outputs.values == {"version": 2}


async def test_timeout_kills_the_warm_child_and_its_children(
    harness, warm_executor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    command = _python("sleeper", spec={"kwargs": {"pidfile": str(pidfile)}}, timeout_s=2)
    await harness.send(command)
    child, grandchild, parent = await _pids(pidfile, harness)
    assert parent != os.getpid()
    finished = await harness.finished(command)
    assert finished.status is StepStatus.TIMED_OUT
    await harness.wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=5)
    assert _alive(parent)  # the warm parent serves the next step


async def test_cancel_kills_the_warm_child_and_its_children(
    harness, warm_executor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    command = _python("sleeper", spec={"kwargs": {"pidfile": str(pidfile), "ignore_term": True}})
    await harness.send(command)
    child, grandchild, _ = await _pids(pidfile, harness)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await harness.send(
        CancelStep(order_run_id=command.order_run_id, step_run_id=command.step_run_id, reason="x")
    )
    finished = await harness.finished(command)
    assert finished.status is StepStatus.CANCELLED
    assert harness.arrived[finished.message_id] - sent < 1.5  # kill grace is 0.3 s here
    await harness.wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=5)


async def test_a_crashed_warm_parent_is_replaced(harness, warm_executor, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    running = _python("sleeper", spec={"kwargs": {"pidfile": str(pidfile)}})
    await harness.send(running)
    child, grandchild, parent = await _pids(pidfile, harness)
    os.kill(parent, signal.SIGKILL)
    lost = await harness.finished(running)
    assert lost.status is StepStatus.FAILED
    assert lost.error is not None
    assert lost.error.kind == "signal"
    assert "warm interpreter" in lost.log_tail
    await harness.wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=5)
    after = await harness.run(_probe())
    assert after.status is StepStatus.SUCCEEDED, after.error
    assert after.outputs.values["ppid"] not in (parent, os.getpid())


async def test_cold_true_runs_in_a_fresh_interpreter(harness, warm_executor) -> None:
    warm = await harness.run(_probe())
    cold = await harness.run(_probe(cold=True))
    assert warm.outputs.values["ppid"] != os.getpid()
    assert cold.outputs.values["ppid"] == os.getpid()
    assert cold.outputs.values["library_was_loaded"] is False


async def test_stop_lets_a_warm_step_finish_within_the_grace(
    harness, start_executor, steps_folder: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "running"
    command = _python("nap", spec={"kwargs": {"marker": str(marker)}})
    async with start_executor(python_path=(str(steps_folder),), shutdown_grace_s=10.0):
        await harness.send(command)
        await harness.wait_for(marker.exists)  # the warm child runs when the stop begins
    finished = await harness.finished(command)
    assert finished.status is StepStatus.SUCCEEDED, finished.error
    assert finished.outputs.values == {"napped": True}
