"""The dashboard and the metrics table name only instruments the services have, and all of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import sous_common.metrics
import sous_executor.metrics
import sous_scheduler.metrics
import sous_test_runner.metrics

ROOT = Path(__file__).resolve().parents[2]
MODULES = (
    sous_common.metrics,
    sous_scheduler.metrics,
    sous_executor.metrics,
    sous_test_runner.metrics,
)
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def instruments() -> set[str]:
    """Every `sous_` metric family the services register (counters without `_total`)."""
    return {
        family.name
        for family in REGISTRY.collect()
        if family.name.startswith("sous_") and not family.name.startswith("sous_test_probe")
    }


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_dashboard_query_reads_an_instrument_that_exists() -> None:
    assert MODULES
    dashboard = json.loads((ROOT / "deploy/grafana/sous.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {base(n) for e in exprs for n in re.findall(r"\bsous_[a-z_]+", e)}
    assert used <= instruments(), used - instruments()
    assert instruments() - used == set(), "instruments the dashboard does not show"


def test_the_metrics_table_documents_every_instrument() -> None:
    text = (ROOT / "docs/operations.md").read_text()
    documented = {base(n) for n in re.findall(r"^\| `(sous_[a-z_]+)`", text, re.MULTILINE)}
    assert documented == instruments()
