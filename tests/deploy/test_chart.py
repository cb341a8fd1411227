"""The Helm chart: it lints, renders, and renders what a cluster needs to run Sous."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sous.kafka_access import ACCESS, Grant, Operation, ResourceType, chart_values, grants
from sous.supervisor import SERVICES
from sous_contracts.topics import CATALOG
from tests.deploy.chart import CHART, KUBERNETES, VALUES, of_kind, render, run_helm

SCHEMAS = Path(__file__).parent / "schemas"
CUSTOM = {
    "KafkaTopic": "kafkatopic.json",
    "KafkaUser": "kafkauser.json",
    "ScaledObject": "scaledobject.json",
    "TriggerAuthentication": "triggerauthentication.json",
    "ServiceMonitor": "servicemonitor.json",
}
"""Custom resources, checked against the schemas under schemas/ (see its README)."""
OPS_PORT = 9400


@cache
def rendered(name: str) -> list[dict[str, Any]]:
    return render(VALUES[name])


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of values: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merged(base[key], value) if both else value
    return out


def values(name: str) -> dict[str, Any]:
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    return merged(base, yaml.safe_load(VALUES[name].read_text()))


@pytest.mark.parametrize("name", list(VALUES))
def test_helm_lint_passes_strictly(name: str) -> None:
    done = run_helm(
        "lint", str(CHART), "--strict", "--kube-version", KUBERNETES, "-f", str(VALUES[name])
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", list(VALUES))
def test_every_manifest_matches_its_schema(name: str) -> None:
    from jsonschema import Draft202012Validator

    for manifest in rendered(name):
        kind = manifest["kind"]
        if kind in CUSTOM:
            schema = json.loads((SCHEMAS / CUSTOM[kind]).read_text())
            errors = [e.message for e in Draft202012Validator(schema).iter_errors(manifest)]
            assert not errors, (kind, manifest["metadata"]["name"], errors)
        else:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_install_without_a_database_url_says_what_is_missing() -> None:
    done = run_helm("template", "sous", str(CHART), "--kube-version", KUBERNETES)
    assert done.returncode != 0
    assert "secrets.databaseUrl (or secrets.existingSecret) is required" in done.stderr


@pytest.mark.parametrize("name", list(VALUES))
def test_each_service_is_a_probed_non_root_deployment(name: str) -> None:
    deployments = of_kind(rendered(name), "Deployment")
    assert set(deployments) == {f"sous-{service}" for service in SERVICES}
    for service in SERVICES:
        pod = deployments[f"sous-{service}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["service", service]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["ops"] == OPS_PORT
        env = {e["name"]: e for e in container["env"]}
        assert env["SOUS_OPS_PORT"]["value"] == str(OPS_PORT)
        assert "secretKeyRef" in env["SOUS_DATABASE_URL"]["valueFrom"]
        assert {"SOUS_KAFKA_BOOTSTRAP", "SOUS_KAFKA_TOPIC_PREFIX"} <= set(env)
        consumers = values(name)["services"][service].get("consumers")
        if consumers:
            variable = f"SOUS_{service.upper().replace('-', '_')}_CONSUMERS"
            assert env[variable]["value"] == str(consumers)
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert container[probe]["httpGet"] == {"path": path, "port": "ops"}, (service, probe)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"], service


@pytest.mark.parametrize("name", list(VALUES))
def test_each_deployment_has_a_disruption_budget_over_its_pods(name: str) -> None:
    manifests = rendered(name)
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for deployment_name, deployment in of_kind(manifests, "Deployment").items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budgets[deployment_name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        assert selector == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", ["default", "sasl"])
def test_every_secret_a_pod_reads_is_in_the_chart_secret(name: str) -> None:
    manifests = rendered(name)
    (secret,) = of_kind(manifests, "Secret").values()
    secret_name, keys = secret["metadata"]["name"], set(secret["data"])
    assert {"database-url", "signing-key-domain-registry.pem", "signing-key-scheduler.pem"} <= keys
    pods = [d["spec"]["template"]["spec"] for d in of_kind(manifests, "Deployment").values()]
    pods += [j["spec"]["template"]["spec"] for j in of_kind(manifests, "Job").values()]
    for pod in pods:
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for c in pod["containers"]
            for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        for ref in refs:
            assert ref["name"] == secret_name
            assert ref["key"] in keys or ref.get("optional"), ref
        for volume in (v["secret"] for v in pod["volumes"] if "secret" in v):
            assert volume["secretName"] == secret_name
            assert {item["key"] for item in volume["items"]} <= keys, volume
    for auth in of_kind(manifests, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert (ref["name"], ref["key"]) in {(secret_name, key) for key in keys}, ref


def test_the_registry_and_console_have_http_services() -> None:
    services = of_kind(rendered("default"), "Service")
    ports = {
        name: {p["name"]: p["port"] for p in s["spec"]["ports"]} for name, s in services.items()
    }
    assert ports["sous-domain-registry"] == {"http": 8470, "ops": OPS_PORT}
    assert ports["sous-console"] == {"http": 8090, "ops": OPS_PORT}
    console = of_kind(rendered("default"), "Deployment")["sous-console"]
    env = {
        e["name"]: e.get("value")
        for e in console["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SOUS_CONSOLE_REGISTRY_URL"] == "http://sous-domain-registry:8470"


def partitions(name: str) -> dict[str, int]:
    """The partitions each topic gets: the catalog's in the values, then the overrides."""
    topics = values(name)["topics"]
    return {t["name"]: t["partitions"] for t in topics["catalog"]} | topics["partitions"]


def test_default_values_carry_the_topic_catalog_of_the_contracts() -> None:
    catalog = values("default")["topics"]["catalog"]
    assert [t["name"] for t in catalog] == [t.name for t in CATALOG]
    for entry, topic in zip(catalog, CATALOG, strict=True):
        assert entry["partitions"] == topic.partitions, topic.name
        assert entry["config"] == topic.config(), topic.name


@pytest.mark.parametrize("name", ["default", "sasl"])
def test_the_topics_job_creates_the_catalog_with_partitions_from_values(name: str) -> None:
    manifests = rendered(name)
    (job,) = of_kind(manifests, "Job").values()
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["topics", "create"]
    wanted = partitions(name)
    given = [args[i + 1].split("=") for i, arg in enumerate(args) if arg == "--partitions"]
    assert {topic: int(count) for topic, count in given} == wanted
    assert args[args.index("--replication-factor") + 1] == "3"
    assert not of_kind(manifests, "KafkaTopic")


def test_with_strimzi_topics_are_kafkatopics_with_the_prefix() -> None:
    manifests = rendered("cluster")
    assert not of_kind(manifests, "Job")
    topics = {t["spec"]["topicName"]: t for t in of_kind(manifests, "KafkaTopic").values()}
    catalog = values("cluster")["topics"]["catalog"]
    assert set(topics) == {f"prod.{t['name']}" for t in catalog}
    for entry in catalog:
        topic = topics[f"prod.{entry['name']}"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "sous"
        assert topic["spec"]["partitions"] == partitions("cluster")[entry["name"]]
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"] == {**entry["config"], "min.insync.replicas": "2"}


def test_with_keda_executors_and_test_runners_scale_on_their_lag() -> None:
    manifests = rendered("cluster")
    scaled = of_kind(manifests, "ScaledObject")
    assert set(scaled) == {"sous-executor", "sous-test-runner"}
    deployments = of_kind(manifests, "Deployment")
    consumed = {"sous-executor": "sous.commands.step", "sous-test-runner": "sous.commands.test"}
    counts = partitions("cluster")
    auths = of_kind(manifests, "TriggerAuthentication")
    for name, obj in scaled.items():
        assert "replicas" not in deployments[name]["spec"], "KEDA owns the replica count"
        assert obj["spec"]["scaleTargetRef"]["name"] == name
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["topic"] == f"prod.{consumed[name]}"
        assert trigger["metadata"]["consumerGroup"] == f"prod.{name}"
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        env = deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        consumers = [int(e["value"]) for e in env if e["name"].endswith("_CONSUMERS")] or [1]
        assert obj["spec"]["maxReplicaCount"] * consumers[0] <= counts[consumed[name]]
        assert trigger["authenticationRef"]["name"] in auths
    assert "replicas" in deployments["sous-scheduler"]["spec"]


def test_autoscaling_past_the_partitions_is_refused() -> None:
    done = run_helm(
        "template",
        "sous",
        str(CHART),
        "--kube-version",
        KUBERNETES,
        "-f",
        str(VALUES["default"]),
        "--set",
        "keda.enabled=true",
        "--set",
        "services.test-runner.consumers=3",
    )
    assert done.returncode != 0
    assert "maxReplicas x consumers = 18, but sous.commands.test has 6 partitions" in done.stderr


def test_the_service_monitor_scrapes_the_ops_port_of_every_service() -> None:
    manifests = rendered("cluster")
    (monitor,) = of_kind(manifests, "ServiceMonitor").values()
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("ops", "/metrics")
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s
        for s in of_kind(manifests, "Service").values()
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert len(scraped) == len(SERVICES)
    assert all(any(p["name"] == "ops" for p in s["spec"]["ports"]) for s in scraped)
    assert not of_kind(rendered("default"), "ServiceMonitor")


def test_sasl_principals_get_their_own_password_from_the_secret() -> None:
    manifests = rendered("sasl")
    (secret,) = of_kind(manifests, "Secret")
    for service in SERVICES:
        deployment = of_kind(manifests, "Deployment")[f"sous-{service}"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SOUS_KAFKA_SASL_USERNAME"]["value"] == f"sous-{service}"
        ref = env["SOUS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret, "key": f"kafka-password-{service}"}
    assert not of_kind(manifests, "KafkaUser")


def test_with_strimzi_users_each_service_signs_in_with_the_password_strimzi_made() -> None:
    manifests = rendered("cluster")
    assert not of_kind(manifests, "Secret"), "existingSecret replaces the chart's Secret"
    for service in SERVICES:
        deployment = of_kind(manifests, "Deployment")[f"sous-{service}"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SOUS_KAFKA_SASL_USERNAME"]["value"] == f"sous-{service}"
        ref = env["SOUS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"sous-{service}", "key": "password"}
        assert env["SOUS_KAFKA_SSL_CAFILE"]["value"] == "/etc/sous/kafka-ca/ca.crt"
    for name, auth in of_kind(manifests, "TriggerAuthentication").items():
        refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
        assert (refs["password"]["name"], refs["password"]["key"]) == (name, "password")
        assert refs["username"]["name"] == "sous-prod"


def test_values_carry_the_acl_model_of_the_code() -> None:
    assert values("default")["acl"] == yaml.safe_load(chart_values())["acl"], (
        "paste `python -m sous.kafka_security values` into values.yaml"
    )


def test_with_strimzi_users_each_service_gets_exactly_its_acls() -> None:
    users = of_kind(rendered("cluster"), "KafkaUser")
    assert set(users) == {f"sous-{service}" for service in SERVICES}
    operations = {"Read": Operation.READ, "Write": Operation.WRITE}
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    given = set()
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "sous"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["patternType"] == "literal", acl
            (operation,) = set(acl["operations"]) - {"Describe"}
            given.add(
                Grant(
                    kinds[resource["type"]], resource["name"], f"User:{name}", operations[operation]
                )
            )
    services = tuple(a for a in ACCESS if a.principal in users)
    assert given == grants(services, prefix="prod.")


def test_strimzi_users_refuse_a_mechanism_strimzi_does_not_make() -> None:
    done = run_helm(
        "template",
        "sous",
        str(CHART),
        "--kube-version",
        KUBERNETES,
        "-f",
        str(VALUES["cluster"]),
        "--set",
        "kafka.saslMechanism=SCRAM-SHA-256",
    )
    assert done.returncode != 0
    assert "strimzi.users: Strimzi's KafkaUsers authenticate with SCRAM-SHA-512" in done.stderr
