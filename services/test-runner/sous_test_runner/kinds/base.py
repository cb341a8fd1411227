"""What a test kind is: a spec model and an async function from a check to an `Outcome`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sous_common.db import AnyConnection
from sous_common.references import Scope
from sous_contracts.common import Outputs, Params
from sous_test_runner.adapters.connections import PoolCache, choose, resolve
from sous_test_runner.adapters.history import SeriesKey
from sous_test_runner.domain.outcome import Outcome

HistoryReader = Callable[[SeriesKey, int], Awaitable[list[float]]]
"""Returns the last N recorded numeric values of a series, newest first."""


@dataclass
class TestContext:
    """What a test may use: the step's outputs and params, its connections, its history."""

    __test__ = False

    outputs: Outputs
    params: Params
    connections: Mapping[str, str]
    """Connection name → reference (`secret:NAME`)."""
    scope: Scope
    """The tested step's domain and kitchen: the only secret store its references read."""
    pools: PoolCache
    history: HistoryReader
    series: SeriesKey
    """This test's own history series."""
    timeout_s: float
    secrets_dir: Any = None
    env: Mapping[str, str] | None = field(default=None)
    """Where `SOUS_SECRET_*` variables are read (the process's when None)."""

    def dsn(self, named: str | None) -> str:
        """Return the resolved DSN of the check's connection (never publish it)."""
        ref = self.connections[choose(named, self.connections)]
        return resolve(ref, self.scope, secrets_dir=self.secrets_dir, env=self.env)

    @contextlib.asynccontextmanager
    async def connection(self, named: str | None) -> AsyncIterator[AnyConnection]:
        """Yield a read-only connection whose statements stop at the test's timeout."""
        async with self.pools.connection(self.dsn(named), self.timeout_s) as conn:
            yield conn


Run = Callable[[Any, TestContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class Kind:
    """A registered test kind."""

    name: str
    model: type[BaseModel]
    """Spec model that validates the check block."""
    run: Run
    """Runs a validated check."""


KINDS: dict[str, Kind] = {}
"""Every registered kind by name."""


def register(name: str, model: type[BaseModel]) -> Callable[[Run], Run]:
    """Register the decorated function as the runner of kind `name`, validated by `model`."""

    def decorate(run: Run) -> Run:
        if name in KINDS:
            raise ValueError(f"test kind {name!r} is registered twice")
        KINDS[name] = Kind(name, model, run)
        return run

    return decorate
