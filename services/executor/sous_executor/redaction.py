"""Process-wide redaction of the executor's own log lines."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

from sous_executor.domain.redact import Redactor

LOG_REDACTOR = Redactor()
"""Every connection and secret value this process has resolved; masked in every log line."""


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not LOG_REDACTOR:
        return event
    return {
        k: LOG_REDACTOR.data(v) if isinstance(v, str | dict | list) else v for k, v in event.items()
    }


def install() -> None:
    """Put the redaction processor before the structlog renderer and on stdlib handlers."""
    install_stdlib()
    processors = list(structlog.get_config()["processors"])
    if _redact not in processors:
        processors.insert(len(processors) - 1, _redact)
        structlog.configure(processors=processors)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if LOG_REDACTOR:
            record.msg = LOG_REDACTOR.text(record.getMessage())
            record.args = ()
            if record.exc_info:
                record.exc_text = LOG_REDACTOR.text(
                    logging.Formatter().formatException(record.exc_info)
                )
                record.exc_info = None
        return True


def install_stdlib() -> None:
    """Mask secrets in standard library log records too (FastStream, asyncio)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(_RedactingFilter())
