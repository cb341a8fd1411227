"""The redactor: secret and connection values never leave the executor in clear text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
"""What a redacted value is replaced with."""


def _passwords(value: str) -> list[str]:
    """Return a URL's password (`postgresql://u:pw@host/db`), as written and decoded."""
    if "://" not in value:
        return []
    try:
        password = urlsplit(value).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


class Redactor:
    """Replaces every known sensitive value in strings and JSON-like structures.

    Longer values are replaced first, so a value that contains another is masked whole.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._ordered: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Learn more sensitive values: their JSON-escaped forms, and a URL's password too."""
        for value in values:
            for part in (value, *_passwords(value)):
                if part:
                    self._values.update({part, json.dumps(part)[1:-1]})
        self._ordered = sorted(self._values, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, value: str) -> str:
        """Return `value` with every sensitive value masked."""
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """Return a copy of a JSON-like structure with every string (and key) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
