"""A test that runs far past any test's time is a hang: say where everything waits, then end.

Without this, a hang (a lock never released, a task never given back) holds the whole run
until CI's own limit kills it, and its output names neither the test nor the wait. pytest's
`faulthandler_timeout` shows threads only; the event loop's tasks are what wait here.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import sys
import threading
from collections.abc import Callable

LIMIT_S = float(os.environ.get("SOUS_TEST_HANG_S", "900"))
"""Far longer than any test takes (the slowest, chaos, takes a few minutes), far shorter
than CI allows the whole run."""


def _tasks_of(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        out.write(f"--- task {task.get_name()} ---\n")
        task.print_stack(file=out)
    return out.getvalue()


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    """The loops threads run now, found in their frames (a service freezes the collector's
    view, so a search of its objects can miss them)."""
    loops: list[asyncio.AbstractEventLoop] = []
    for frame in sys._current_frames().values():
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, asyncio.AbstractEventLoop) and candidate not in loops:
                loops.append(candidate)
            frame = frame.f_back
    return loops


def _report_and_end(nodeid: str, uncapture: Callable[[], object]) -> None:
    uncapture()  # what pytest captures is lost at os._exit
    sys.stderr.write(f"\n=== {nodeid} still runs after {LIMIT_S:.0f} s: a hang ===\n")
    faulthandler.dump_traceback(file=sys.stderr)
    for loop in _running_loops():
        # The loop is idle in its wait when a task hangs: it runs this at once.
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(_tasks_of, loop), loop)
        try:
            sys.stderr.write(future.result(timeout=10))
        except Exception as exc:  # a loop busy forever cannot answer
            sys.stderr.write(f"the event loop did not answer: {exc!r}\n")
    sys.stderr.flush()
    os._exit(3)


async def _as_coroutine(fn, *args):  # type: ignore[no-untyped-def]
    return fn(*args)


def watch(nodeid: str, uncapture: Callable[[], object]) -> threading.Timer:
    """Start watching one test (setup, call and teardown); cancel the timer when it ends.

    `uncapture` gives sys.stderr back to the terminal before the report is written.
    """
    timer = threading.Timer(LIMIT_S, _report_and_end, args=(nodeid, uncapture))
    timer.daemon = True
    timer.start()
    return timer
