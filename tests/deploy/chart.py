"""Render the Helm chart with the `helm` that `make tools` builds into `.tools/bin`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sous"
VALUES = {
    "default": CHART / "ci" / "default-values.yaml",
    "cluster": CHART / "ci" / "cluster-values.yaml",
    "sasl": CHART / "ci" / "sasl-values.yaml",
}
"""The value sets every test renders: the defaults; Strimzi + KEDA + ServiceMonitor over
SASL_SSL with an existing Secret; SASL with the chart's own Secret, the topics Job and KEDA."""
KUBERNETES = "1.37.0"
"""The Kubernetes release the chart is rendered for and whose schemas its manifests meet
(a helm built by `go install` has no release of its own to default to)."""


def helm() -> str:
    """Return the helm binary: `SOUS_HELM`, `.tools/bin/helm`, else one on PATH.

    Without one the test fails on CI (`make test` builds it) and is skipped elsewhere.
    """
    for candidate in (os.environ.get("SOUS_HELM"), str(ROOT / ".tools" / "bin" / "helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("helm")
    if found:
        return found
    reason = "helm is missing: `make tools` builds it into .tools/bin"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with a private home, so no user configuration or repository leaks in."""
    home = ROOT / ".tools" / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [helm(), *args], capture_output=True, text=True, check=False, timeout=120, env=env
    )


def render(values: Path, *sets: str) -> list[dict[str, Any]]:
    """Return the manifests `helm template` renders for a values file (and `--set`s)."""
    extra = [arg for s in sets for arg in ("--set", s)]
    done = run_helm(
        "template",
        "sous",
        str(CHART),
        "--namespace",
        "sous",
        "--kube-version",
        KUBERNETES,
        "-f",
        str(values),
        *extra,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Return the manifests of one kind by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
