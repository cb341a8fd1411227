"""Compatibility gate: each message's generated JSON Schema against its released baseline.

Exits 1 with one line per breaking change; `--update` writes the baseline of every message's
current major version. The policy it enforces is in contracts/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sous_contracts.registry_of_types import MESSAGE_TYPES

BASELINE_DIR = Path(__file__).resolve().parent.parent / "baseline"

Schema = dict[str, Any]
Current = dict[str, tuple[int, Schema]]
"""Message type → (major version, generated schema)."""
Baseline = dict[str, dict[int, Schema]]
"""Message type → major version → released schema."""

# A bound the new schema sets lower (upper bounds) or higher (lower bounds) narrows it.
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_EXACT = ("pattern", "format", "multipleOf")


@dataclass(frozen=True)
class Change:
    """One breaking change: which message, where in its JSON data, and what changed."""

    message: str
    path: str
    what: str
    fixed_by_update: bool = False
    """True when `--update` is the fix: a new message type or a raised major version."""

    def __str__(self) -> str:
        return f"{self.message} {self.path}: {self.what}"


def major_version(cls: type[BaseModel]) -> int:
    """Return a message class's major version: the default of its `schema_version` field."""
    default = cls.model_fields["schema_version"].default
    if not isinstance(default, int):
        raise TypeError(f"{cls.__name__}.schema_version must default to an int")
    return default


def current_schemas() -> Current:
    """Return every catalog message's major version and serialization JSON Schema."""
    return {
        name: (major_version(cls), cls.model_json_schema(mode="serialization"))
        for name, cls in MESSAGE_TYPES.items()
    }


def load_baseline(directory: Path = BASELINE_DIR) -> Baseline:
    """Read every `<Type>.v<major>.json` file of the baseline directory."""
    out: Baseline = {}
    for path in sorted(directory.glob("*.v*.json")):
        name, _, major = path.name.removesuffix(".json").rpartition(".v")
        out.setdefault(name, {})[int(major)] = json.loads(path.read_text())
    return out


class _Comparison:
    """Walks an old and a new schema side by side, collecting what the new one breaks."""

    def __init__(self, message: str, old_root: Schema, new_root: Schema) -> None:
        self.message, self.old_root, self.new_root = message, old_root, new_root
        self.changes: list[Change] = []
        self._open: set[tuple[str, str]] = set()

    def report(self, path: str, what: str) -> None:
        self.changes.append(Change(self.message, path, what))

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        refs = (str(old.get("$ref", "")), str(new.get("$ref", "")))
        if all(refs) and refs in self._open:
            return  # a recursive model: this pair is being compared further up already
        self._open.add(refs)
        self._compare_resolved(_resolve(old, self.old_root), _resolve(new, self.new_root), path)
        self._open.discard(refs)

    def _compare_resolved(self, old: Schema, new: Schema, path: str) -> None:
        if _variants(old) is None and _variants(new) is None:
            self._compare_single(old, new, path)
            return
        for variant in _variants(old) or [old]:
            match = _match(variant, _variants(new) or [new], self)
            if match is None:
                shown = str(variant.get("$ref", "")).rpartition("/")[2] or _show(_types(variant))
                self.report(path, f"type narrowed: {shown} no longer accepted")
            else:
                self.compare(variant, match, path)

    def _compare_single(self, old: Schema, new: Schema, path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if not _covers(new_types, old_types):
            self.report(path, f"type narrowed: {_show(old_types)} -> {_show(new_types)}")
        old_values, new_values = _allowed(old), _allowed(new)
        if new_values is not None:
            if old_values is None:
                self.report(path, f"values restricted to {sorted(new_values)}")
            for value in sorted((old_values or set()) - new_values):
                self.report(path, f"enum value {value} removed")
        for key in _UPPER + _LOWER + _EXACT:
            if key in new and key not in old:
                self.report(path, f"{key} added: {new[key]!r}")
            elif key in new and new[key] != old[key] and not _looser(key, old, new):
                verb = "changed" if key in _EXACT else "tightened"
                self.report(path, f"{key} {verb}: {old[key]!r} -> {new[key]!r}")
        self._compare_object(old, new, path)
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self.compare(old["items"], new["items"], f"{path}[*]")

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name in sorted(old_props):
            if name not in new_props:
                self.report(f"{path}.{name}", "field removed (or renamed)")
            else:
                self.compare(old_props[name], new_props[name], f"{path}.{name}")
        old_required = set(old.get("required", []))
        for name in sorted(set(new.get("required", [])) - old_required):
            what = "optional field made required" if name in old_props else "required field added"
            self.report(f"{path}.{name}", what)
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties")
        if new_extra is False and old_extra is not False:
            self.report(path, "additional properties no longer allowed")
        elif isinstance(new_extra, dict):
            self.compare(old_extra if isinstance(old_extra, dict) else {}, new_extra, f"{path}.*")


def _resolve(node: Schema, root: Schema) -> Schema:
    """Return the node with a local `$ref` replaced by its target (siblings kept)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return {**_resolve(target, root), **siblings}


def _variants(node: Schema) -> list[Schema] | None:
    found = node.get("anyOf", node.get("oneOf"))
    return list(found) if isinstance(found, list) else None


def _match(old: Schema, candidates: list[Schema], walk: _Comparison) -> Schema | None:
    """Return the new variant standing for an old one: the same `$ref` first, else by type."""
    for new in candidates:
        if "$ref" in old and new.get("$ref") == old["$ref"]:
            return new
    old_types = _types(_resolve(old, walk.old_root))
    return next(
        (c for c in candidates if _covers(_types(_resolve(c, walk.new_root)), old_types)), None
    )


def _types(node: Schema) -> frozenset[str] | None:  # None: any type
    found = node.get("type")
    return None if found is None else frozenset([found] if isinstance(found, str) else found)


def _covers(new: frozenset[str] | None, old: frozenset[str] | None) -> bool:
    if new is None or old is None:
        return new is None
    return all(t in new or (t == "integer" and "number" in new) for t in old)


def _allowed(node: Schema) -> set[str] | None:
    """Return the allowed values (enum or const) as JSON text, or None when unrestricted."""
    if "const" in node:
        return {json.dumps(node["const"])}
    return {json.dumps(v) for v in node["enum"]} if "enum" in node else None


def _looser(key: str, old: Schema, new: Schema) -> bool:
    return key not in _EXACT and bool(new[key] > old[key] if key in _UPPER else new[key] < old[key])


def _show(types: frozenset[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types))


def compare(message: str, old: Schema, new: Schema) -> list[Change]:
    """Return the changes from `old` to `new` (one major's schemas) that break readers."""
    walk = _Comparison(message, old, new)
    walk.compare(old, new, "$")
    return walk.changes


def check(current: Current, baseline: Baseline) -> list[Change]:
    """Return every breaking change of the current schemas against the baseline."""
    changes = [
        Change(name, "$", "message type removed from the catalog")
        for name in sorted(set(baseline) - set(current))
    ]
    for name, (major, schema) in sorted(current.items()):
        released = baseline.get(name, {})
        if major in released:
            changes += compare(name, released[major], schema)
        else:
            what = f"no baseline for major {major}: run --update"
            changes.append(Change(name, "$", what, fixed_by_update=True))
        # A type first released at this major never had the lower ones.
        for gone in sorted(set(range(min(released, default=major), major)) - set(released)):
            what = f"baseline of major {gone} deleted: keep it, readers must handle both majors"
            changes.append(Change(name, "$", f"{what} while producers of major {gone} exist"))
    return changes


def write_baseline(current: Current, directory: Path = BASELINE_DIR) -> None:
    """Write each message's schema as the baseline of its current major (others kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, (major, schema) in current.items():
        text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        (directory / f"{name}.v{major}.json").write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Report breaking changes, or with `--update` write the baseline when there are none."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update", action="store_true", help="write the current baseline")
    args = parser.parse_args(argv)
    current, baseline = current_schemas(), load_baseline(BASELINE_DIR)
    # --update refreshes a major or starts a new one; it never blesses a break within one.
    breaking = [c for c in check(current, baseline) if not (args.update and c.fixed_by_update)]
    if breaking:
        print("contract changes the gate refuses (see contracts/README.md):", file=sys.stderr)
        for change in breaking:
            print(f"  {change}", file=sys.stderr)
        return 1
    if args.update:
        write_baseline(current, BASELINE_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
