"""`sous up` gives each service only what it needs: the admin token reaches the registry alone."""

from __future__ import annotations

import pytest

from sous.environments import service_environment
from sous.stack import EXAMPLES, stack_environments

TOKEN = "admin-token-from-the-run-folder"
CLI = {
    "PATH": "/usr/bin",
    "HOME": "/home/sam",
    "LANG": "C.UTF-8",
    "LC_CTYPE": "C.UTF-8",
    "SOUS_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "SOUS_DATABASE_URL": "postgresql://sous@127.0.0.1:5432/sous",
    "SOUS_TOKEN": "the-users-own-cli-token",
    "SOUS_REGISTRY_URL": "http://127.0.0.1:8470",
    "SOUS_SCHEDULER_CONSUMERS": "2",
    "SOUS_EXECUTOR_CONCURRENCY": "8",
    "SOUS_TEST_RUNNER_CONSUMERS": "1",
    "AWS_SECRET_ACCESS_KEY": "cloud-credential",
}
EXAMPLE_DOMAINS = ("SALES", "FINANCE", "PAYMENTS", "MARKETING", "PLATFORM")


def test_only_the_registry_gets_the_admin_token() -> None:
    envs = stack_environments(CLI, TOKEN)
    assert set(envs) == {"domain-registry", "scheduler", "executor", "test-runner", "console"}
    assert envs["domain-registry"]["SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN"] == TOKEN
    for name in ("scheduler", "executor", "test-runner"):
        assert TOKEN not in envs[name].values(), name
        assert not any(k.startswith("SOUS_DOMAIN_REGISTRY_") for k in envs[name]), name


def test_the_admin_token_set_by_the_user_still_reaches_the_registry_alone() -> None:
    envs = stack_environments({**CLI, "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN": "users-admin"}, TOKEN)
    assert envs["domain-registry"]["SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN"] == "users-admin"
    assert "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN" not in envs["executor"]
    assert "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN" not in envs["test-runner"]


def test_every_service_gets_the_basics_the_servers_and_its_own_settings_only() -> None:
    envs = stack_environments(CLI, TOKEN)
    for name, env in envs.items():
        for key in ("HOME", "LANG", "LC_CTYPE"):
            assert env[key] == CLI[key], (name, key)
        assert env["PATH"].endswith(CLI["PATH"])  # the stack's interpreter first, see below
        assert env["SOUS_KAFKA_BOOTSTRAP"] == CLI["SOUS_KAFKA_BOOTSTRAP"]
        assert env["SOUS_DATABASE_URL"] == CLI["SOUS_DATABASE_URL"]
        for key in ("SOUS_TOKEN", "SOUS_REGISTRY_URL", "AWS_SECRET_ACCESS_KEY"):
            assert key not in env, (name, key)
    assert envs["scheduler"]["SOUS_SCHEDULER_CONSUMERS"] == "2"
    assert "SOUS_SCHEDULER_CONSUMERS" not in envs["executor"]
    assert envs["executor"]["SOUS_EXECUTOR_CONCURRENCY"] == "8"
    assert envs["executor"]["SOUS_EXECUTOR_DOMAINS_ROOT"] == str(EXAMPLES)
    assert "SOUS_EXECUTOR_CONCURRENCY" not in envs["test-runner"]
    assert envs["test-runner"]["SOUS_TEST_RUNNER_CONSUMERS"] == "1"


def test_each_example_domain_gets_its_warehouse_in_its_own_store() -> None:
    envs = stack_environments({**CLI, "SOUS_WAREHOUSE_DSN": "postgresql://wh@h/data"}, TOKEN)
    for name in ("executor", "test-runner"):
        for domain in EXAMPLE_DOMAINS:
            assert envs[name][f"SOUS_SECRET_{domain}__WAREHOUSE"] == "postgresql://wh@h/data"
        assert "SOUS_WAREHOUSE_DSN" not in envs[name]
    for name in ("domain-registry", "scheduler"):
        assert not any(k.startswith("SOUS_SECRET_") for k in envs[name]), name
    default = stack_environments(CLI, TOKEN)["executor"]
    assert default["SOUS_SECRET_SALES__WAREHOUSE"] == CLI["SOUS_DATABASE_URL"]
    own = stack_environments({**CLI, "SOUS_SECRET_SALES__WAREHOUSE": "mine"}, TOKEN)
    assert own["executor"]["SOUS_SECRET_SALES__WAREHOUSE"] == "mine"


def test_the_console_sees_its_own_settings_and_no_secret() -> None:
    envs = stack_environments(CLI, "admin-token")
    assert "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN" not in envs["console"]
    assert not any(k.startswith("SOUS_SECRET_") for k in envs["console"])


def test_an_unknown_service_has_no_environment() -> None:
    with pytest.raises(KeyError):
        service_environment("no-such-service", CLI)


def test_steps_find_the_stacks_own_interpreter_first_on_path() -> None:
    import os
    import sys
    from pathlib import Path

    here = str(Path(sys.executable).parent)
    envs = stack_environments(CLI, TOKEN)
    for name, env in envs.items():
        assert env["PATH"].split(os.pathsep) == [here, "/usr/bin"], name
    again = stack_environments({**CLI, "PATH": f"/usr/bin{os.pathsep}{here}"}, TOKEN)
    assert again["executor"]["PATH"].split(os.pathsep) == [here, "/usr/bin"]


def test_every_service_gets_an_ops_port_of_its_own_recorded_in_the_run_folder(tmp_path) -> None:
    from sous.stack import ops_addresses, with_ops_ports

    envs = stack_environments(CLI, TOKEN)
    addresses = ops_addresses(tmp_path, list(envs), {8470, 8090})
    envs = with_ops_ports(envs, addresses)
    ports = {env["SOUS_OPS_PORT"] for env in envs.values()}
    assert len(ports) == len(envs)
    assert all(int(p) > 0 for p in ports)
    assert not ports & {"8470", "8090"}
    assert all(env["SOUS_OPS_HOST"] == "127.0.0.1" for env in envs.values())
    recorded = dict(line.split("=", 1) for line in (tmp_path / "ops").read_text().splitlines())
    assert recorded == {n: f"http://127.0.0.1:{e['SOUS_OPS_PORT']}" for n, e in envs.items()}


def test_ops_ports_skip_the_ports_the_stack_reserved(monkeypatch) -> None:
    import socket

    from sous.infra.procs import free_ports

    handed = iter([8470, 41001, 8090, 41002, 41003])  # what the system would give out

    class Socket:
        def __init__(self) -> None:
            self.port = next(handed)

        def bind(self, address: tuple[str, int]) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

        def close(self) -> None:
            pass

        def __enter__(self) -> Socket:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(socket, "socket", Socket)
    assert free_ports(2, {8470, 8090}) == [41001, 41002]


def test_every_service_gets_the_opentelemetry_settings() -> None:
    otel = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    envs = stack_environments({**CLI, **otel}, TOKEN)
    for name, env in envs.items():
        assert otel.items() <= env.items(), name
