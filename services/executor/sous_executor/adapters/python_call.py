"""Runs inside the child interpreter of a python step: import, call, write the result.

Usage: `python -m sous_executor.adapters.python_call module:function`, with the keyword
arguments as JSON in `SOUS_PYTHON_KWARGS` and the result file in `SOUS_PYTHON_RESULT`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import traceback
from typing import Any


def _write(payload: dict[str, Any]) -> None:
    with open(os.environ["SOUS_PYTHON_RESULT"], "w") as f:
        json.dump(payload, f, default=str)


def main(target: str) -> int:
    """Call the target; return the process exit code."""
    module_name, _, name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
        kwargs = json.loads(os.environ.get("SOUS_PYTHON_KWARGS") or "{}")
        value = function(**kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_wait(value))
    except BaseException as exc:  # report everything, SystemExit included
        traceback.print_exc()
        _write({"exception": {"type": type(exc).__name__, "message": str(exc)}})
        return 1
    _write({"value": value})
    return 0


async def _wait(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
