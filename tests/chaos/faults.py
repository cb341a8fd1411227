"""The faults, injected in a seeded random order at random moments while the load runs.

Each fault leaves the fleet as it found it (a killed replica is started again), so the
next one hits a working system; the outages stop one server of the private instance alone.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from tests.chaos.fleet import Fleet
from tests.private_infra import PrivateInfra

Fault = Callable[[], Awaitable[None]]


class Chaos:
    """Injects faults into a fleet and counts them by kind."""

    def __init__(
        self, fleet: Fleet, infra: PrivateInfra, rng: random.Random, outage_s: float
    ) -> None:
        self.fleet, self.infra, self.rng, self.outage_s = fleet, infra, rng, outage_s
        self.injected: Counter[str] = Counter()

    def faults(self) -> dict[str, Fault]:
        """Every kind of fault, by name."""
        return {
            "sigkill scheduler": lambda: self._sigkill("scheduler"),
            "sigkill executor": lambda: self._sigkill("executor"),
            "sigkill test_runner": lambda: self._sigkill("test_runner"),
            "sigterm executor mid-step": self._sigterm_executor_mid_step,
            "sigterm scheduler": self._sigterm_scheduler,
            "kafka outage": lambda: self._outage("kafka"),
            "postgres outage": lambda: self._outage("postgres"),
        }

    async def run(self, rounds: int) -> None:
        """Scale executors 1→3, inject every fault `rounds` times in random order, 3→1."""
        await self._scale(3)
        plan = [name for _ in range(rounds) for name in self.faults()]
        self.rng.shuffle(plan)
        faults = self.faults()
        for number, name in enumerate(plan):
            if number == len(plan) // 2:
                await self._scale(1)
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))  # a random moment, not a barrier
            print(f"chaos: {name}", flush=True)
            async with self.fleet.lock:
                await faults[name]()
            self.injected[name] += 1

    async def _scale(self, replicas: int) -> None:
        async with self.fleet.lock:
            await self._scale_to(replicas)

    async def _scale_to(self, replicas: int) -> None:
        self.fleet.wanted["executor"] = replicas
        before = self.fleet.count("executor")
        while self.fleet.count("executor") < replicas:
            await self.fleet.start("executor")
        while self.fleet.count("executor") > replicas:
            await self.fleet.terminate("executor", self.fleet.count("executor") - 1)
        print(f"chaos: executors {before}→{replicas}", flush=True)
        self.injected[f"scale executors {before}→{replicas}"] += 1

    async def _sigkill(self, role: str) -> None:
        await self.fleet.kill(role, self.rng.randrange(self.fleet.count(role)))
        await self.fleet.start(role)

    async def _sigterm_scheduler(self) -> None:
        await self.fleet.terminate("scheduler")
        await self.fleet.start("scheduler")

    async def _sigterm_executor_mid_step(self) -> None:
        """SIGTERM the replica running an attempt, once one runs (bounded wait)."""
        pids = {p.pid: i for i, p in enumerate(self.fleet._alive("executor"))}
        index = await self._running_executor(pids)
        await self.fleet.terminate("executor", index)
        await self.fleet.start("executor")

    async def _running_executor(self, pids: dict[int, int]) -> int:
        conn = await asyncpg.connect(self.fleet.servers.database_url)
        try:
            async with asyncio.timeout(60):
                while True:
                    owners = await conn.fetch(
                        f"SELECT worker_id FROM x_{self.fleet.suffix}.attempts"
                        " WHERE status = 'running'"
                    )
                    for row in owners:
                        pid = int(row["worker_id"].rsplit(":", 1)[-1])
                        if pid in pids:
                            return pids[pid]
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def _outage(self, server: str) -> None:
        await self.infra.stop(server)
        await asyncio.sleep(self.outage_s)  # the outage itself, not a wait for something
        await self.infra.start(server)
