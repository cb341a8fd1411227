"""The environment a shell or python step sees: params, connections, secrets, ids."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


def env_name(prefix: str, name: str) -> str:
    """Return `SOUS_<PREFIX>_<NAME>` with the name upper-cased and `-`/`.` turned into `_`."""
    return f"{prefix}{_NOT_ENV.sub('_', name.upper())}"


def encode(value: Any) -> str:
    """Strings pass as they are; every other JSON value is JSON-encoded."""
    return value if isinstance(value, str) else json.dumps(value)


def step_environment(
    *,
    base: Mapping[str, str],
    params: Mapping[str, Any],
    connections: Mapping[str, str],
    secrets: Mapping[str, str],
    ids: Mapping[str, str],
    extra: Mapping[str, str] = {},
) -> dict[str, str]:
    """Build a step's environment; later groups win: base, extra, params, connections, secrets, ids.

    Args:
        base: variables passed through from the executor (PATH, HOME …).
        params: resolved params, as `SOUS_PARAM_<NAME>`.
        connections: resolved connection values, as `SOUS_CONN_<NAME>`.
        secrets: resolved secret values, as `SOUS_SECRET_<NAME>`.
        ids: `SOUS_ORDER_RUN_ID`, `SOUS_STEP`, `SOUS_OUTPUTS` … set by the executor.
        extra: the spec's own `env` entries.
    """
    env = {**base, **extra}
    env.update({env_name("SOUS_PARAM_", k): encode(v) for k, v in params.items()})
    env.update({env_name("SOUS_CONN_", k): v for k, v in connections.items()})
    env.update({env_name("SOUS_SECRET_", k): v for k, v in secrets.items()})
    env.update(ids)
    return env
