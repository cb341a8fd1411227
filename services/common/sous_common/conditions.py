"""Step conditions (`when:`): CEL expressions, checked at apply time, evaluated by the scheduler.

CEL comes from cel-python (`celpy`), run by its tree-walking interpreter: no Python is ever
generated or `eval`-ed. Its parse tree lets apply time see every name an expression reads
(`steps.ingest.outputs.rows`), not only the first word of each, and check their types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError
from lark import Token, Tree

ROOTS = ("params", "steps", "event", "run")
"""What a condition may read: the run's params, the steps it needs, the triggering event and
the run itself."""
STEP_FIELDS = ("outputs", "tests", "status")
"""What a condition may read of a step it needs."""
TEST_FIELDS = ("passed", "failed", "warnings", "errors", "logged")
"""Test counts of a needed step (`steps.load.tests.failed`)."""
RUN_FIELDS = ("id", "domain", "recipe", "variation", "kitchen")
"""What a condition may read of its run."""
EVENT_FIELDS = (
    "domain",
    "recipe",
    "variation",
    "kitchen",
    "status",
    "params",
    "outputs",
    "order_run_id",
)
"""What a condition may read of the completion event that triggered the run (empty without)."""
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_SAMPLES: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0.0,
    "boolean": False,
    "date": "2000-01-01",
    "object": {},
    "array": [],
}
"""A value of each param type, for the apply-time type check."""
_TYPED = frozenset({"relation", "addition", "multiplication", "unary"})
_WRAPPERS = _TYPED | {"expr", "conditionalor", "conditionaland", "member", "primary"}
_OPERATORS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "unary_not": "!",
    "unary_neg": "-",
}


@lru_cache(maxsize=1)
def _env() -> celpy.Environment:
    """The CEL environment, built on first use.

    Building its parser takes about half a second, which every service importing this
    module would otherwise pay at start-up, condition or not.
    """
    return celpy.Environment(runner_class=celpy.InterpretedRunner)


class ConditionError(ValueError):
    """A condition that does not parse, does not check, or cannot be evaluated."""


@dataclass(frozen=True)
class Verdict:
    """What a condition gave: its value and the values of the names it read."""

    value: bool
    seen: dict[str, Any]
    """Dotted name → value, for every name the expression read that had a value."""


@lru_cache(maxsize=1024)
def _compiled(source: str) -> tuple[Tree[Any], celpy.Runner]:
    try:
        tree = _env().compile(source)
    except CELParseError as exc:
        where = str(exc).strip().splitlines()
        raise ConditionError(f"does not parse: {' '.join(w.strip() for w in where)}") from None
    return tree, _env().program(tree)


def _path(node: Tree[Any] | Token) -> tuple[str, ...] | None:
    """The dotted name a member node spells (`steps.a.outputs`), or None."""
    if not isinstance(node, Tree):
        return None
    if node.data in _WRAPPERS and len(node.children) == 1:
        return _path(node.children[0])
    if node.data == "ident":
        return (str(node.children[0]),)
    if node.data == "member_dot":
        base = _path(node.children[0])
        return None if base is None else (*base, str(node.children[1]))
    return None


def _walk(node: Tree[Any] | Token, bound: frozenset[str]) -> Iterator[tuple[str, ...]]:
    if not isinstance(node, Tree):
        return
    if (path := _path(node)) is not None:
        if path[0] not in bound:
            yield path
        return
    if node.data == "member_dot_arg" and str(node.children[1]) in _MACROS:
        receiver, _, args = node.children
        yield from _walk(receiver, bound)
        exprs = args.children if isinstance(args, Tree) else []
        var = _path(exprs[0]) if exprs else None
        inner = bound | {var[0]} if var is not None and len(var) == 1 else bound
        for e in exprs[1:]:
            yield from _walk(e, inner)
        return
    for child in node.children:
        yield from _walk(child, bound)


def references(source: str) -> list[tuple[str, ...]]:
    """Every name the condition reads, as dotted paths, in order of appearance."""
    tree, _ = _compiled(source)
    return list(dict.fromkeys(_walk(tree, frozenset())))


def _name_problem(path: tuple[str, ...], params: Mapping[str, str], needs: list[str]) -> str | None:
    root, rest = path[0], path[1:]
    dotted = ".".join(path)
    if root not in ROOTS:
        return f"unknown name '{root}' (names: {', '.join(ROOTS)})"
    if not rest:
        return None
    if root == "params" and rest[0] not in params:
        return f"unknown param '{rest[0]}' (params: {', '.join(sorted(params)) or 'none'})"
    if root == "steps":
        if rest[0] not in needs:
            return (
                f"unknown step '{rest[0]}': a condition reads only the steps it needs "
                f"(needs: {', '.join(needs) or 'none'})"
            )
        if len(rest) > 1 and rest[1] not in STEP_FIELDS:
            return f"unknown name '{dotted}' (a step has: {', '.join(STEP_FIELDS)})"
        if len(rest) > 2 and rest[1] == "tests" and rest[2] not in TEST_FIELDS:
            return f"unknown name '{dotted}' (test counts: {', '.join(TEST_FIELDS)})"
    if root == "run" and rest[0] not in RUN_FIELDS:
        return f"unknown name '{dotted}' (run has: {', '.join(RUN_FIELDS)})"
    if root == "event" and rest[0] not in EVENT_FIELDS:
        return f"unknown name '{dotted}' (event has: {', '.join(EVENT_FIELDS)})"
    return None


def _probe(params: Mapping[str, str], needs: list[str]) -> dict[str, Any]:
    """Values of the declared types: what the type check evaluates against."""
    step = {"outputs": {}, "tests": dict.fromkeys(TEST_FIELDS, 0), "status": "succeeded"}
    return {
        "params": {name: _SAMPLES[kind] for name, kind in params.items()},
        "steps": {n: step for n in needs},
        "event": {},
        "run": dict.fromkeys(RUN_FIELDS, ""),
    }


def _type_error(result: Any) -> str | None:
    """Say which operator does not fit which types, from the interpreter's overload error."""
    if not (isinstance(result, CELEvalError) and result.args[1:2] == (TypeError,)):
        return None
    text = str(result.args[0])
    rule = re.search(r"'(\w+)'\)", text)
    op = _OPERATORS.get(rule.group(1), rule.group(1)) if rule else "operator"
    kinds = [k.lower() for k in re.findall(r"celtypes\.(\w+?)Type", text)] or ["these"]
    return f"'{op}' does not apply to {' and '.join(kinds)}"


def _run(runner: celpy.Runner, values: dict[str, Any]) -> Any:
    try:
        return runner.evaluate(cast(Any, json_to_cel(values)))
    except CELEvalError as exc:
        return exc


def check(source: str, *, params: Mapping[str, str], needs: list[str]) -> list[str]:
    """Return what is wrong with a condition (empty when it is fine).

    `params` maps each declared param to its type; `needs` are the step's needs. Unknown
    names are refused, and so is a comparison or arithmetic whose operands' declared types do
    not fit (`params.day > 3` with `day` a string), or a result that is not a boolean.
    """
    try:
        tree, runner = _compiled(source)
    except ConditionError as exc:
        return [str(exc)]
    problems = [p for path in references(source) if (p := _name_problem(path, params, needs))]
    if problems:
        return problems
    probe = _probe(params, needs)
    # Each operator on its own: `&&` and `||` would hide a type error behind a false side.
    for node in tree.iter_subtrees_topdown():  # type: ignore[no-untyped-call]
        if node.data not in _TYPED or len(node.children) < 2:
            continue
        if (why := _type_error(_run(_env().program(node), probe))) is not None:
            return [f"type error: {why}"]
    result = _run(runner, probe)
    if (why := _type_error(result)) is not None:
        return [f"type error: {why}"]
    if not isinstance(result, CELEvalError | celtypes.BoolType):
        return [f"must be a boolean, got {type(result).__name__.removesuffix('Type').lower()}"]
    return []


def _lookup(values: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def evaluate(source: str, values: dict[str, Any]) -> Verdict:
    """Evaluate a condition over JSON values; raise ConditionError when it cannot be.

    Pure and deterministic: the same source and values give the same verdict.
    """
    _, runner = _compiled(source)
    seen: dict[str, Any] = {}
    for path in references(source):
        found, value = _lookup(values, path)
        if found:
            seen[".".join(path)] = value
    result = _run(runner, values)
    if isinstance(result, CELEvalError):
        raise ConditionError(str(result.args[0]))
    if not isinstance(result, celtypes.BoolType):
        raise ConditionError(f"must give a boolean, gave {result!r}")
    return Verdict(value=bool(result), seen=seen)
