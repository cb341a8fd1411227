"""The chaos workload: four domains joined by triggers, whose steps leave side effects.

`a/make` and `c/make` are started by commands; each succeeded `a` run triggers `b/follow`
(`on`), and `d/join` fires once both an `a` and a `c` run completed (`all`). Every sql step
inserts (run id, step) into `<data>.effects` (no unique key: a second execution shows as a
second row); every shell step appends (step_run_id, attempt) to a side-effect file as its
first act, so an attempt executed twice shows as a repeated line.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

from sous_contracts.registry import EntityKind
from sous_contracts.runs import StartOrderRun
from tests.scheduler.integration.conftest import KITCHENS, recipe
from tests.scheduler.standins import entity

STARTED = ("a", "c")
"""Domains whose `make` runs the workload starts by command."""
RETRIES = {"max": 20, "backoff": "1s", "factor": 1.0}
"""Enough tries to outlive the killed executors; a lost attempt is dispatched again."""
SHELL = 'echo "$SOUS_STEP_RUN_ID $SOUS_ATTEMPT" >> "$CHAOS_SIDE"; sleep "$SOUS_PARAM_NAP"'
LIMIT = {"limit": 200}


def _insert(data: str, step: str) -> dict[str, Any]:
    sql = f"INSERT INTO {data}.effects (run_id, step) VALUES ('${{run.id}}', '{step}')"
    return {
        "run": {"kind": "sql", "connection": "warehouse", "sql": sql},
        "retries": RETRIES,
        "tests": [
            {
                "name": "one_row",
                "check": {"kind": "metric", "output": "rows_affected", "op": "==", "value": 1},
            }
        ],
    }


def _shell(side: Path, needs: list[str]) -> dict[str, Any]:
    return {
        "run": {"kind": "shell", "argv": ["sh", "-c", SHELL], "env": {"CHAOS_SIDE": str(side)}},
        "needs": needs,
        "retries": RETRIES,
    }


def registry(data: str, side: Path) -> list:
    """The changelog records of the workload's kitchens, domains and recipes."""
    warehouse = {"warehouse": {"ref": "secret:warehouse"}}
    domains = [
        entity(EntityKind.DOMAIN, d, {"domain": d, "connections": warehouse}) for d in "abcd"
    ]
    nap = {"nap": {"default": "0.5"}}
    made = {"load": _insert(data, "load"), "work": _shell(side, ["load"])}
    return [
        *KITCHENS,
        *domains,
        recipe("a", "make", made, params=nap, concurrency=LIMIT),
        recipe("c", "make", made, params=nap, concurrency=LIMIT),
        recipe(
            "b",
            "follow",
            {"copy": _insert(data, "copy"), "work": _shell(side, ["copy"])},
            params={**nap, "upstream": {"required": True}},
            concurrency=LIMIT,
            triggers=[
                {
                    "on": {"domain": "a", "recipe": "make"},
                    "variation": "prod",
                    "params": {"upstream": "${event.order_run_id}"},
                }
            ],
        ),
        recipe(
            "d",
            "join",
            {"merge": _insert(data, "merge")},
            concurrency=LIMIT,
            triggers=[
                {
                    "all": [{"domain": "a", "recipe": "make"}, {"domain": "c", "recipe": "make"}],
                    "within": "1h",
                    "variation": "prod",
                }
            ],
        ),
    ]


def commands(rng: random.Random, count: int) -> list[StartOrderRun]:
    """`count` runs of `a/make` and `c/make` (two a for each c), each step napping a while."""
    return [
        StartOrderRun(
            order_run_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            domain="c" if i % 3 == 2 else "a",
            recipe="make",
            variation="prod",
            params={"nap": f"{rng.uniform(0.2, 1.5):.2f}"},
        )
        for i in range(count)
    ]
