"""Scopes per domain, token hashing, and when a sandbox may merge."""

from __future__ import annotations

import pytest

from sous_common.trust import Principal, denial
from sous_domain_registry.domain.access import hash_token
from sous_domain_registry.domain.readmodel import merge_refusal, unproven_refusal

BOT = Principal("payments-bot", {"payments": ["publish-events", "read"]})
ADMIN = Principal("admin", {"*": ["admin"]})
SALES_ADMIN = Principal("sales-lead", {"sales": ["admin"], "*": ["read"]})


@pytest.mark.parametrize(
    ("who", "scope", "domain", "allowed"),
    [
        (BOT, "publish-events", "payments", True),
        (BOT, "publish-events", "sales", False),
        (BOT, "run", "payments", False),
        (BOT, "read", "payments", True),
        (ADMIN, "run", "anything", True),
        (ADMIN, "admin", None, True),
        (SALES_ADMIN, "run", "sales", True),
        (SALES_ADMIN, "read", "finance", True),
        (SALES_ADMIN, "run", "finance", False),
        (SALES_ADMIN, "admin", None, False),
    ],
)
def test_scopes(who, scope, domain, allowed):
    assert who.may(scope, domain) is allowed
    assert (denial(who, scope, domain) is None) is allowed


def test_denials_name_principal_scope_and_domain():
    assert denial(BOT, "run", "payments") == (
        "principal 'payments-bot' lacks scope 'run' on domain 'payments'"
    )
    assert denial(BOT, "admin", None) == (
        "principal 'payments-bot' lacks scope 'admin' on every domain ('*')"
    )


def test_tokens_are_stored_as_sha256():
    h = hash_token("secret")
    assert h == "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    assert "secret" not in h


def run(status, failed=0):
    return {"domain": "sales", "recipe": "daily", "status": status, "tests": {"failed": failed}}


@pytest.mark.parametrize(
    ("latest", "refused"),
    [
        ([], False),
        ([run("succeeded")], False),
        ([run("succeeded", failed=1)], True),
        ([run("failed")], True),
        ([{**run("succeeded"), "tests": {"warnings": 3}}], False),
    ],
)
def test_merge_is_refused_while_latest_runs_failed(latest, refused):
    assert (merge_refusal("dev-alice", latest) is not None) is refused


@pytest.mark.parametrize(
    ("changed", "proven", "lacking"),
    [
        ([], set(), None),
        (["sales/daily"], {"sales/daily"}, None),
        (["sales/daily"], set(), "sales/daily"),
        (["sales/daily", "finance/revenue"], {"sales/daily"}, "finance/revenue"),
        (["sales/daily", "finance/revenue"], set(), "finance/revenue, sales/daily"),
    ],
)
def test_merge_is_refused_until_each_changed_recipe_passed_a_run(changed, proven, lacking):
    why = unproven_refusal("dev-alice", changed, proven)
    assert (why is None) is (lacking is None)
    assert lacking is None or f"since it changed {lacking};" in str(why)
