"""What the read model keeps of run events: pure decisions on run, step and test rows."""

from __future__ import annotations

from typing import Any

from sous_contracts.common import TestSummary


def blocking_failures(tests: dict[str, Any]) -> int:
    """Return how many error-severity tests failed in a run's test summary."""
    return int(TestSummary.model_validate(tests or {}).failed)


def merge_refusal(kitchen: str, latest: list[dict[str, Any]]) -> str | None:
    """Return why a sandbox may not merge: its latest run per recipe failed error tests."""
    failed = [
        f"{r['domain']}/{r['recipe']}"
        for r in latest
        if r["status"] == "failed" or blocking_failures(r["tests"]) > 0
    ]
    if not failed:
        return None
    return (
        f"kitchen '{kitchen}' cannot merge: the latest runs of {', '.join(sorted(failed))} "
        "failed (error tests or run failures)"
    )


def unproven_refusal(kitchen: str, changed: list[str], proven: set[str]) -> str | None:
    """Return why a sandbox may not merge: a recipe it changed has no passing run since.

    `changed` names the recipes (`domain/recipe`) with a version of the kitchen, `proven`
    those of them with a succeeded run of that version, without failed error tests.
    """
    lacking = sorted(set(changed) - proven)
    if not lacking:
        return None
    return (
        f"kitchen '{kitchen}' cannot merge: no succeeded run without failed error tests in it "
        f"since it changed {', '.join(lacking)}; run them in the kitchen first"
    )


def merge_reasons(
    kitchen: str,
    parent: str | None,
    latest: list[dict[str, Any]],
    changed: list[str],
    proven: set[str],
    invalid: list[str],
) -> list[str]:
    """Return every reason a kitchen may not merge now; empty when it may.

    The merge and the question whether it may happen both answer from here, so they agree.
    `invalid` lists why its versions would not validate once promoted.
    """
    if parent is None:
        return [f"kitchen '{kitchen}' has no parent to merge into"]
    reasons = [
        why
        for why in (merge_refusal(kitchen, latest), unproven_refusal(kitchen, changed, proven))
        if why is not None
    ]
    if invalid:
        reasons.append(
            f"kitchen '{kitchen}' cannot merge: its versions would not validate: "
            + "; ".join(invalid)
        )
    return reasons
