"""deploy/compose.yaml: valid Compose, and every service wired as the chart wires it."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from sous.supervisor import SERVICES

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    # The Compose specification's schema, as check-jsonschema ships it.
    text = (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(compose)
    ]
    assert not errors


def test_every_service_runs_from_the_image_with_a_readiness_check(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["service", name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["environment"]["SOUS_OPS_PORT"] == "9400"
        assert "http://127.0.0.1:9400/readyz" in " ".join(service["healthcheck"]["test"])
        needs = service["depends_on"]
        assert needs["topics"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == "service_healthy", name


def test_kafka_is_a_kraft_broker_of_the_official_image(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["image"].split(":")[1][0].isdigit(), "pin a release, not latest"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["healthcheck"]["test"]
    assert compose["services"]["postgres"]["healthcheck"]["test"]


def test_topics_are_created_once_before_the_services(compose: dict[str, Any]) -> None:
    topics = compose["services"]["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["restart"] == "no"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert {"kafka-data", "postgres-data"} <= declared
    for name in ("kafka", "postgres"):
        (volume,) = compose["services"][name]["volumes"]
        assert volume.split(":")[0] in declared, name
