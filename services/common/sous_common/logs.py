"""structlog set-up: one JSON object per line, with ids bound per message."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

bind = structlog.contextvars.bind_contextvars
"""Bind ids (`order_run_id`, `step`, `domain` …) to every log line of the current task."""
unbind_all = structlog.contextvars.clear_contextvars
"""Forget the ids bound to the current task."""


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


def get_logger(name: str) -> Any:
    """Return a structlog logger."""
    return structlog.get_logger(name)
