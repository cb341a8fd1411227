"""python steps: sync and async functions in a subprocess, exceptions and crashes reported."""

from __future__ import annotations

import textwrap

import pytest

from sous_contracts.common import StepStatus
from tests.executor.conftest import execute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MODULE = textwrap.dedent(
    """
    import asyncio, json, os

    def load(day, limit=1):
        print("loading", day, os.environ["SOUS_PARAM_DAY"])
        with open(os.environ["SOUS_OUTPUTS"], "w") as f:
            json.dump({"datasets": [{"uri": "pg://wh/sales.orders", "rows": limit}]}, f)
        return {"rows": limit, "day": day}

    async def fetch(n):
        await asyncio.sleep(0.01)
        return {"values": {"n": n}, "datasets": []}

    def explode():
        raise ValueError("bad input in row 7")

    def crash():
        os.kill(os.getpid(), 9)

    def scalar():
        return 12
    """
)


@pytest.fixture
async def python_executor(start_executor, tmp_path):
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "sous_test_steps.py").write_text(MODULE)
    async with start_executor(python_path=(str(folder),)) as ex:
        yield ex


async def test_sync_function_return_value_and_outputs_file_are_merged(
    harness, python_executor
) -> None:
    command = execute(
        "python",
        {"function": "sous_test_steps:load", "kwargs": {"day": "2026-01-01", "limit": 9}},
        params={"day": "2026-01-01"},
    )
    finished = await harness.run(command)
    assert finished.status == StepStatus.SUCCEEDED, finished.error
    assert finished.outputs.values == {"rows": 9, "day": "2026-01-01"}
    assert [d.rows for d in finished.outputs.datasets] == [9]
    assert "loading 2026-01-01 2026-01-01" in finished.log_tail


async def test_async_function_and_scalar_results(harness, python_executor) -> None:
    fetched = await harness.run(
        execute("python", {"function": "sous_test_steps:fetch", "kwargs": {"n": 4}})
    )
    assert fetched.outputs.values == {"n": 4}
    scalar = await harness.run(execute("python", {"function": "sous_test_steps:scalar"}))
    assert scalar.outputs.values == {"result": 12}


async def test_exception_type_and_message_are_reported(harness, python_executor) -> None:
    finished = await harness.run(execute("python", {"function": "sous_test_steps:explode"}))
    assert finished.status == StepStatus.FAILED
    assert finished.error.kind == "exception"
    assert finished.error.exception_type == "ValueError"
    assert finished.error.message == "ValueError: bad input in row 7"
    assert "Traceback" in finished.log_tail


async def test_a_crashing_step_does_not_take_the_executor_down(harness, python_executor) -> None:
    crashed = await harness.run(execute("python", {"function": "sous_test_steps:crash"}))
    assert crashed.error.kind == "signal"
    assert crashed.error.signal == 9
    missing = await harness.run(execute("python", {"function": "no_such_module:f"}))
    assert missing.error.exception_type == "ModuleNotFoundError"
    after = await harness.run(execute("noop"))
    assert after.status == StepStatus.SUCCEEDED


async def test_invalid_spec_is_a_spec_error(harness, python_executor) -> None:
    finished = await harness.run(execute("python", {"function": "not a function"}))
    assert finished.error.kind == "spec"
    assert "function" in finished.error.message
