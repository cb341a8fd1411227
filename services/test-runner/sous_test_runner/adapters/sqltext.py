"""Quoting of identifiers that checks name (tables, columns), so names cannot inject SQL."""

from __future__ import annotations


def ident(name: str) -> str:
    """Quote one identifier: `order` → `"order"`."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def table(name: str) -> str:
    """Quote a possibly schema-qualified table name: `sales.orders` → `"sales"."orders"`."""
    return ".".join(ident(part) for part in name.split("."))


def columns(names: list[str]) -> str:
    """Quote a list of columns, comma-separated."""
    return ", ".join(ident(n) for n in names)
