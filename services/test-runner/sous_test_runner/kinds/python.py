"""Kind `python`: a `module:function` returning a bool, or a value compared by `op`/`value`.

The function gets the keyword arguments it declares among `outputs` (the step's `Outputs`),
`params` (a dict) and `connection` (the resolved DSN of the check's connection). A plain
function runs in a worker thread, a coroutine function on the loop; both within the timeout.
A thread cannot be killed: after a timeout it is abandoned and its result ignored.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from sous_contracts.specs.tests import PythonCheck
from sous_test_runner.domain.compare import compare, describe, jsonable
from sous_test_runner.domain.outcome import Outcome
from sous_test_runner.kinds.base import TestContext, register


def load_function(ref: str) -> Callable[..., Any]:
    """Import `module:function` and return the callable."""
    module_name, _, name = ref.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise LookupError(f"{ref}: {module_name} has no callable {name!r}")
    return fn  # type: ignore[no-any-return]


def _arguments(fn: Callable[..., Any], ctx: TestContext) -> dict[str, Any]:
    parameters = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    wanted = set(parameters) if not takes_all else {"outputs", "params"}
    kwargs: dict[str, Any] = {}
    if "outputs" in wanted:
        kwargs["outputs"] = ctx.outputs
    if "params" in wanted:
        kwargs["params"] = dict(ctx.params)
    if "connection" in parameters:
        kwargs["connection"] = ctx.dsn(None)
    return kwargs


@register("python", PythonCheck)
async def run_python(check: PythonCheck, ctx: TestContext) -> Outcome:
    """Call the function and judge what it returns."""
    fn = load_function(check.function)
    kwargs = _arguments(fn, ctx)
    if inspect.iscoroutinefunction(fn):
        result = await fn(**kwargs)
    else:
        result = await asyncio.to_thread(fn, **kwargs)
    if isinstance(result, bool) and check.op is None:
        verdict = "returned True" if result else "returned False"
        return Outcome.judged(result, f"{check.function} {verdict}", result)
    if check.op is None:
        return Outcome.error(
            f"{check.function} returned {jsonable(result)!r}; set `op` and `value` to judge it",
            jsonable(result),
        )
    holds = compare(result, check.op, check.value)
    message = describe(check.function, result, check.op, check.value)
    return Outcome.judged(holds, message, jsonable(result), jsonable(check.value))
