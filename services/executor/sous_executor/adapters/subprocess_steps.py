"""The shell and python runners: argv or `module:function` in a child process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sous_contracts.common import Outputs
from sous_contracts.specs.steps import PythonRun, ShellRun
from sous_contracts.steps import StepError
from sous_executor.adapters.context import StepContext, parse_spec
from sous_executor.adapters.process import run_process
from sous_executor.adapters.warm import run_warm
from sous_executor.domain.environment import step_environment
from sous_executor.domain.outcome import StepFailure, exit_error
from sous_executor.domain.outputs import (
    OutputsError,
    from_mapping,
    merge,
    parse_outputs_file,
)

RESULT_FILE = ".sous-result.json"
"""Where the python step wrapper writes the return value or the exception."""


def _environment(context: StepContext, extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: os.environ[k] for k in context.settings.pass_env if k in os.environ}
    return step_environment(
        base=base,
        params=context.command.params,
        connections=context.connections,
        secrets=context.secrets,
        ids=context.ids(),
        extra=extra or {},
    )


def _read_outputs(context: StepContext) -> Outputs:
    path = Path(context.ids()["SOUS_OUTPUTS"])
    if not path.exists():
        return Outputs()
    try:
        return parse_outputs_file(path.read_text(errors="replace"))
    except OutputsError as exc:
        raise StepFailure(StepError(kind="spec", message=str(exc))) from exc


async def run_shell(context: StepContext) -> Outputs:
    """Run the argv list; no shell is involved unless argv itself names one."""
    spec = parse_spec(ShellRun, context)
    cwd = context.folder
    if spec.cwd is not None:
        root = context.settings.domains_root
        domain_folder = root / context.command.domain if root is not None else None
        if domain_folder is not None and domain_folder.is_dir():
            cwd = (domain_folder / spec.cwd).resolve()
        else:
            cwd = (context.folder / spec.cwd).resolve()
            cwd.mkdir(parents=True, exist_ok=True)
    code = await run_process(context, spec.argv, _environment(context, spec.env), cwd)
    if code != 0:
        raise StepFailure(exit_error(code), _read_outputs(context))
    return _read_outputs(context)


async def run_python(context: StepContext) -> Outputs:
    """Call `module:function` in a process of its own, forked warm unless the spec says cold."""
    spec = parse_spec(PythonRun, context)
    paths = [*context.settings.python_path, str(context.folder)]
    if existing := os.environ.get("PYTHONPATH"):
        paths.append(existing)
    env = _environment(context, {"PYTHONPATH": os.pathsep.join(paths)})
    env["SOUS_PYTHON_KWARGS"] = json.dumps(spec.kwargs)
    env["SOUS_PYTHON_RESULT"] = str(context.folder / RESULT_FILE)
    code = None
    if context.warm is not None and not spec.cold:
        code = await run_warm(context, context.warm, spec.function, env)
    if code is None:
        argv = [sys.executable, "-m", "sous_executor.adapters.python_call", spec.function]
        code = await run_process(context, argv, env, context.folder)
    result = _read_result(context)
    outputs = _read_outputs(context)
    if "exception" in result:
        info = result["exception"]
        raise StepFailure(
            StepError(
                kind="exception",
                message=f"{info['type']}: {info['message']}",
                exception_type=info["type"],
                exit_code=code,
            ),
            outputs,
        )
    if code != 0:
        raise StepFailure(exit_error(code), outputs)
    value = result.get("value")
    if value is not None and not isinstance(value, dict):
        value = {"result": value}
    try:
        return merge(outputs, from_mapping(value))
    except OutputsError as exc:
        raise StepFailure(
            StepError(kind="spec", message=f"{spec.function} returned unusable outputs: {exc}")
        ) from exc


def _read_result(context: StepContext) -> dict[str, Any]:
    path = context.folder / RESULT_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
