"""Generate the AsyncAPI document and JSON Schemas from the code (`python -m ...`).

`--check` exits 1 when the files on disk differ from what the code generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sous_contracts.specs import SPEC_DOCUMENTS
from sous_contracts.topics import CATALOG

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def _message_name(cls: type[BaseModel]) -> str:
    return str(cls.model_fields["type"].default)


def message_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every message, by type name."""
    return {
        _message_name(cls): cls.model_json_schema(mode="serialization")
        for topic in CATALOG
        for cls in topic.messages
    }


def spec_schema() -> dict[str, Any]:
    """Return one JSON Schema accepting any spec document (domain, kitchen, recipe, ingredient)."""
    defs: dict[str, Any] = {}
    variants = []
    for model in SPEC_DOCUMENTS.values():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        variants.append({"$ref": f"#/$defs/{model.__name__}"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Sous spec document",
        "oneOf": variants,
        "$defs": defs,
    }


def asyncapi() -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document of every topic and message."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic in CATALOG:
        refs = {}
        for cls in topic.messages:
            name = _message_name(cls)
            schema = cls.model_json_schema(
                mode="serialization", ref_template="#/components/schemas/{model}"
            )
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
            messages[name] = {
                "name": name,
                "title": name,
                "summary": (cls.__doc__ or "").strip().splitlines()[0],
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{name}"},
            }
            refs[name] = {"$ref": f"#/components/messages/{name}"}
        channel_id = topic.name.replace(".", "_").replace("-", "_")
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description,
            "messages": refs,
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": {"cleanup.policy": [topic.cleanup]},
                    "bindingVersion": "0.5.0",
                }
            },
            "x-key": topic.key,
        }
        operations[f"send_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{n}"} for n in refs],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Sous",
            "version": "1.0.0",
            "description": "Topics and messages of the Sous data mesh orchestrator. "
            "Topic names take the deployment prefix in front.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def rendered() -> dict[Path, str]:
    """Return every generated file's path (relative to the schema dir) and text."""
    files = {Path("asyncapi.json"): asyncapi(), Path("spec.schema.json"): spec_schema()}
    for name, schema in message_schemas().items():
        files[Path("messages") / f"{name}.schema.json"] = schema
    return {p: json.dumps(doc, indent=2, sort_keys=True) + "\n" for p, doc in files.items()}


def stale(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Return the generated files that are missing or differ on disk (or should not be there)."""
    expected = rendered()
    out = [
        p
        for p, text in expected.items()
        if not (directory / p).is_file() or (directory / p).read_text() != text
    ]
    present = (
        {p.relative_to(directory) for p in directory.rglob("*.json")}
        if directory.is_dir()
        else set()
    )
    out += sorted(present - set(expected))
    return out


def write(directory: Path = SCHEMA_DIR) -> None:
    """Write every generated file, removing ones the code no longer makes."""
    expected = rendered()
    if directory.is_dir():
        for old in directory.rglob("*.json"):
            if old.relative_to(directory) not in expected:
                old.unlink()
    for path, text in expected.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Write the schema files, or with `--check` report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when files are stale")
    args = parser.parse_args(argv)
    if args.check:
        if bad := stale():
            print("stale generated contract files (run `make schemas`):", file=sys.stderr)
            for p in bad:
                print(f"  {p}", file=sys.stderr)
            return 1
        return 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
