"""Splitting an SQL script into statements; spotting statements that end a transaction.

Quotes, dollar quotes and (nested) comments are respected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_LEADING_WORDS = re.compile(r"([A-Za-z_]+)\s*([A-Za-z_]*)")

_TRANSACTION_COMMANDS = frozenset({"begin", "commit", "end", "rollback", "abort"})
"""First words of the statements that open or end a transaction (but ROLLBACK TO)."""


@dataclass(frozen=True)
class Statement:
    """One statement of a script and where it starts (0-based character offset)."""

    sql: str
    offset: int


def _skip(script: str, i: int) -> int:
    """Return the index after the quoted literal or comment starting at `i` (or i+1)."""
    ch, rest = script[i], script[i : i + 2]
    if rest == "--":
        end = script.find("\n", i)
        return len(script) if end < 0 else end + 1
    if rest == "/*":  # PostgreSQL block comments nest
        depth, j = 1, i + 2
        while j < len(script) and depth:
            if script.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif script.startswith("*/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        return j
    if ch in "'\"":
        j = i + 1
        while j < len(script):
            if script[j] == ch:
                if script[j + 1 : j + 2] == ch:  # doubled quote inside the literal
                    j += 2
                    continue
                return j + 1
            j += 1
        return j
    if ch == "$" and (m := _DOLLAR.match(script, i)):
        end = script.find(m.group(0), m.end())
        return len(script) if end < 0 else end + len(m.group(0))
    return i + 1


def _start(sql: str) -> int:
    """Return the index of the first character that is neither space nor comment."""
    i = 0
    while i < len(sql):
        if sql[i].isspace():
            i += 1
        elif sql.startswith(("--", "/*"), i):
            i = _skip(sql, i)
        else:
            return i
    return i


def _meaningful(sql: str) -> bool:
    return _start(sql) < len(sql)


def transaction_command(sql: str) -> str | None:
    """Return the command (`COMMIT`, `BEGIN` …) if the statement opens or ends a transaction.

    `ROLLBACK TO [SAVEPOINT]` stays inside the transaction, so it is not one.
    """
    match = _LEADING_WORDS.match(sql, _start(sql))
    if match is None:
        return None
    first, second = match.group(1).lower(), match.group(2).lower()
    if first == "rollback" and second == "to":
        return None
    if first in _TRANSACTION_COMMANDS:
        return first.upper()
    if (first, second) in {("start", "transaction"), ("prepare", "transaction")}:
        return f"{first} {second}".upper()
    return None


def split_statements(script: str) -> list[Statement]:
    """Split at top-level semicolons; drop empty and comment-only pieces."""
    statements: list[Statement] = []
    start = i = 0
    while i < len(script):
        if script[i] == ";":
            piece = script[start:i]
            if _meaningful(piece):
                statements.append(Statement(piece, start))
            start = i = i + 1
            continue
        i = _skip(script, i)
    piece = script[start:]
    if _meaningful(piece):
        statements.append(Statement(piece, start))
    return statements
