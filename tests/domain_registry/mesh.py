"""The example mesh as a bundle of files, for tests."""

from __future__ import annotations

from pathlib import Path

MESH = Path(__file__).resolve().parents[2] / "examples" / "mesh"


def mesh_files(domain: str | None = None) -> dict[str, str]:
    """Return path → text of the example mesh's spec and SQL files (or of one domain)."""
    root = MESH
    out = {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".yaml", ".yml", ".sql")
    }
    if domain is not None:
        out = {k: v for k, v in out.items() if k.startswith(f"{domain}/")}
    return out
