"""Start-up of the `sous` CLI: `sous --help`, and one real command from start to exit.

Each figure is the whole process, as a user waits for it: interpreter start, imports, the
command's work, exit. Wall time depends on what else the machine runs, so the CPU time the
process used (user + system) is printed beside it, with the cores and the load average.
Budget (issue 16): `sous --help` p50 ≤ 500 ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, percentiles

SOUS = Path(sys.executable).parent / "sous"
RUNS = int(os.environ.get("SOUS_BENCH_CLI_RUNS", "30"))
WARM_UP = 3
COMMANDS = {
    "cli_help": ["--help"],
    "cli_topics_list": ["topics", "list", "--json"],  # loads the contracts' topic catalog
}
HELP_BUDGET_MS = 500.0


def one_start(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `sous ARGV` once; return its wall and CPU milliseconds."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(SOUS), *argv], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"sous {' '.join(argv)} exited with {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    """Time each command RUNS times after a warm-up; print one JSON line per command."""
    with tempfile.TemporaryDirectory(prefix="sous-bench-cli-") as run_dir:
        # An empty run folder: no local stack is looked up, whatever this checkout ran.
        env = {**os.environ, "SOUS_RUN_DIR": run_dir, "COLUMNS": "100"}
        for name, argv in COMMANDS.items():
            for _ in range(WARM_UP):
                one_start(argv, env)
            walls, cpus = zip(*(one_start(argv, env) for _ in range(RUNS)), strict=True)
            wall, cpu = percentiles(list(walls)), percentiles(list(cpus))
            figures = {
                "command": "sous " + " ".join(argv),
                "runs": RUNS,
                "p50_ms": wall["p50_ms"],
                "p90_ms": wall["p90_ms"],
                "cpu_p50_ms": cpu["p50_ms"],
                "cpu_p90_ms": cpu["p90_ms"],
                "cpu_count": os.cpu_count(),
                "load_1m": round(os.getloadavg()[0], 2),
            }
            if name == "cli_help":
                figures["budget_p50_ms"] = HELP_BUDGET_MS
            emit(name, **figures)


if __name__ == "__main__":
    main()
