"""A bounded log tail: keeps the last characters of a step's combined output."""

from __future__ import annotations

from sous_executor.domain.redact import Redactor


class LogTail:
    """The end of a log, at most `limit` characters, redacted when read.

    Redaction happens on read rather than per chunk, so a secret split across two
    reads of a pipe is still masked. The buffer keeps twice the limit to leave room.
    """

    def __init__(self, limit: int, redactor: Redactor) -> None:
        self._limit = limit
        self._redactor = redactor
        self._buffer = ""

    def write(self, text: str) -> None:
        """Append output."""
        self._buffer += text
        if len(self._buffer) > 2 * self._limit:
            self._buffer = self._buffer[-2 * self._limit :]

    def line(self, text: str) -> None:
        """Append one line of the executor's own narration."""
        if self._buffer and not self._buffer.endswith("\n"):
            self._buffer += "\n"
        self.write(text + "\n")

    def text(self) -> str:
        """Return the redacted tail, at most `limit` characters."""
        return self._redactor.text(self._buffer)[-self._limit :]
