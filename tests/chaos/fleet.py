"""The services as processes on the private instance: started, killed, stopped, restarted.

Every replica's output goes to a log of its role in the test's folder, appended across
restarts, so a failure can be read back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sous_common.settings import KafkaSettings
from tests.conftest import Servers

FAST_LEASES = {
    "SOUS_SCHEDULER_HEARTBEAT_INTERVAL_S": "1",
    "SOUS_SCHEDULER_LEASE_FACTOR": "3",
    "SOUS_SCHEDULER_MARK_INTERVAL_S": "0.5",
    "SOUS_SCHEDULER_DISPATCH_LEASE_S": "15",
    "SOUS_SCHEDULER_TIMER_POLL_S": "0.1",
    "SOUS_SCHEDULER_CONSUMERS": "1",
}
"""Leases far shorter than an outage: only the watermark keeps them from expiring then."""


@dataclass
class Fleet:
    """Replicas of the scheduler, the executor and the test-runner, by role."""

    kafka: KafkaSettings
    servers: Servers
    folder: Path
    suffix: str
    replicas: dict[str, list[asyncio.subprocess.Process]] = field(default_factory=dict)
    wanted: dict[str, int] = field(default_factory=dict)
    """Replicas each role should have; `revive` restarts those that exited on their own."""
    exits: int = 0
    """Replicas that exited on their own (a service refusing to start during an outage)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by a fault while it changes the fleet, so `revive` never races it."""

    async def revive(self) -> None:
        """Do what a process manager does: start again each replica that exited by itself."""
        async with self.lock:
            for role, wanted in self.wanted.items():
                while self.count(role) < wanted:
                    self.exits += 1
                    await self.start(role)

    def _env(self, role: str) -> dict[str, str]:
        env = {
            **os.environ,
            "SOUS_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "SOUS_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
            "SOUS_DATABASE_URL": self.servers.database_url,
        }
        if role == "scheduler":
            env |= {"SOUS_SCHEDULER_SCHEMA_NAME": f"s_{self.suffix}", **FAST_LEASES}
        elif role == "executor":
            env |= {
                "SOUS_EXECUTOR_SCHEMA_NAME": f"x_{self.suffix}",
                "SOUS_EXECUTOR_WORK_ROOT": str(self.folder / "work"),
                "SOUS_EXECUTOR_SQL_RECORD_SCHEMA": f"r_{self.suffix}",
                "SOUS_EXECUTOR_SHUTDOWN_GRACE_S": "1",
                "SOUS_EXECUTOR_WARM_PYTHON": "false",
            }
            env |= {f"SOUS_SECRET_{d}__WAREHOUSE": self.servers.database_url for d in "ABCD"}
        else:
            env |= {
                "SOUS_TEST_RUNNER_DB_SCHEMA": f"t_{self.suffix}",
                "SOUS_TEST_RUNNER_CONSUMERS": "1",
            }
        return env

    async def start(self, role: str) -> asyncio.subprocess.Process:
        """Start one more replica of `role` (scheduler, executor or test_runner)."""
        module = {"test_runner": "sous_test_runner"}.get(role, f"sous_{role}")
        (self.folder / "work").mkdir(exist_ok=True)
        with (self.folder / f"{role}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "faststream",
                "run",
                "--factory",
                f"{module}.app:create_app",
                env=self._env(role),
                stdout=log,
                stderr=log,
            )
        self.replicas.setdefault(role, []).append(proc)
        return proc

    def count(self, role: str) -> int:
        """Replicas of `role` alive."""
        return sum(p.returncode is None for p in self.replicas.get(role, []))

    async def kill(self, role: str, index: int = 0) -> None:
        """SIGKILL one replica of `role`, wait for it to die, and forget it."""
        proc = self._alive(role)[index]
        proc.kill()
        await proc.wait()

    async def terminate(self, role: str, index: int = 0, grace: float = 30) -> None:
        """SIGTERM one replica of `role`; SIGKILL it if it has not left after `grace`."""
        proc = self._alive(role)[index]
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _alive(self, role: str) -> list[asyncio.subprocess.Process]:
        return [p for p in self.replicas.get(role, []) if p.returncode is None]

    async def stop_all(self) -> None:
        """SIGTERM every replica left (then SIGKILL); used once the checks are done."""
        for role in list(self.replicas):
            while self._alive(role):
                await self.terminate(role, grace=20)
