"""YAML loading for specs with YAML 1.2 booleans: `on:`, `yes`, `off` stay strings.

PyYAML follows YAML 1.1, where the trigger key `on` would silently become `True`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class SpecLoader(yaml.SafeLoader):
    """SafeLoader whose booleans are only `true` and `false` (any case)."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    """Parse one YAML document with YAML 1.2 booleans."""
    return yaml.load(text, Loader=SpecLoader)
