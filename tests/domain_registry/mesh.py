"""The example mesh as a bundle of files, for tests, and the helpers of the refusal tables
that edit it: each row is an edited bundle and the error it must be refused with."""

from __future__ import annotations

from pathlib import Path

from sous_domain_registry.domain.bundle import parse
from sous_domain_registry.domain.validate import validate

MESH = Path(__file__).resolve().parents[2] / "examples" / "mesh"
DAILY = "sales/recipes/daily.yaml"
REVENUE = "finance/recipes/revenue.yaml"


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


def errors_of(files: dict[str, str]) -> list[str]:
    """Return the errors a bundle is refused with (`file: path: reason`), none when valid."""
    cat, errors = parse(files)
    if errors:
        return [str(e) for e in errors]
    return [str(e) for e in validate(cat)]


def edited(path: str, old: str, new: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return `base` (else the example mesh) with the first `old` in `path` replaced by `new`."""
    files = dict(base or mesh_files())
    assert old in files[path], f"{old!r} not in {path}"
    files[path] = files[path].replace(old, new, 1)
    return files


def assert_refusal(files: dict[str, str], expected: str | list[str] | None) -> None:
    """Check one row of a refusal table: the bundle is refused with exactly the `expected`
    error(s), word for word; None: it is accepted."""
    wanted = [] if expected is None else [expected] if isinstance(expected, str) else expected
    assert errors_of(files) == wanted
