"""structlog set-up: one JSON object per line, with ids bound per message."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

bind = structlog.contextvars.bind_contextvars
"""Bind ids (`order_run_id`, `step`, `domain` …) to every log line of the current task."""
unbind_all = structlog.contextvars.clear_contextvars
"""Forget the ids bound to the current task."""


class Repeats(logging.Filter):
    """Let one line of each kind through per window; say how many were held back.

    A client library that cannot reach its server logs the same line for every retry of
    every connection — thousands a minute while Kafka is down. A kind is a logger, a level
    and a message template; the first line of a kind in a window passes, the rest are
    counted, and the next line that passes says how many there were.
    """

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True when the record is to be logged."""
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        since, held = self._kinds.get(kind, (float("-inf"), 0))
        if now - since < self.window_s:
            self._kinds[kind] = (since, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - since:.0f} s)"
        self._kinds[kind] = (now, 0)
        if len(self._kinds) > 10_000:  # templates are few; a flood of new ones is not kept
            self._kinds.clear()
        return True


def configure(service: str, *, level: str = "INFO", json: bool = True) -> None:
    """Configure structlog and the standard library logging for one service process."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Repeats) for f in handler.filters):
            handler.addFilter(Repeats())


def get_logger(name: str) -> Any:
    """Return a structlog logger."""
    return structlog.get_logger(name)
