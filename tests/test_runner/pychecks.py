"""Callables that `python` test kinds name in the test-runner's tests."""

from __future__ import annotations

import asyncio


def rows_positive(outputs) -> bool:
    return outputs.values.get("rows", 0) > 0


def ratio(outputs, params) -> float:
    return outputs.values["rows"] / params["expected"]


async def async_true() -> bool:
    await asyncio.sleep(0)
    return True


def uses_connection(connection: str) -> bool:
    return connection.startswith("postgresql://")


def broken() -> bool:
    raise RuntimeError("the check itself is broken")


async def async_slow() -> bool:
    await asyncio.sleep(5)
    return True


def text() -> str:
    return "hello"


def leak(connection: str) -> str:
    return f"connected with {connection}"
