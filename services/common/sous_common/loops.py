"""Background loops (timers, cron ticks) that outlive failures without flooding the log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sous_common.consuming import TRANSIENT
from sous_common.logs import get_logger

log = get_logger(__name__)


async def every(seconds: float, work: Callable[[], Awaitable[object]], name: str) -> None:
    """Run `work` every `seconds`, forever.

    A transient failure (database or broker away) is logged once as a warning when the
    outage begins and once more when a tick succeeds again, not on every tick; any other
    failure is a bug and logged with its traceback each time. The loop goes on either way.
    """
    outage: str | None = None
    while True:
        try:
            await work()
        except TRANSIENT as exc:
            if outage is None:
                outage = repr(exc)
                log.warning("background loop paused: transient failure", loop=name, error=outage)
        except Exception:
            log.exception("background loop failed", loop=name)
        else:
            if outage is not None:
                log.info("background loop recovered", loop=name, after=outage)
                outage = None
        await asyncio.sleep(seconds)
