"""Render rich objects to plain text for assertions."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType


def render(obj: RenderableType) -> str:
    """Return what the terminal would show, without colours."""
    console = Console(width=200, file=io.StringIO())
    console.print(obj)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out
