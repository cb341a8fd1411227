"""The pure parts of `sous infra`: port choice, rendered configuration, env lines, discovery."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sous.infra.kafka_config import plain_listeners, secure_listeners, server_properties
from sous.infra.layout import Layout, Ports, env_lines, write_env
from sous.infra.postgres import find_bindir
from sous.infra.procs import choose_ports, free_ports, port_is_free
from sous.infra_cmd import infra_app

PORTS = Ports(kafka=9092, controller=9093, postgres=5432)


@pytest.mark.parametrize(
    ("remembered", "kafka_up", "postgres_up", "busy", "expected"),
    [
        # Nothing remembered: three fresh ports.
        (Ports(), False, False, set(), Ports(1, 2, 3)),
        # Remembered and free: kept, so a restart after `down` reuses them.
        (PORTS, False, False, set(), PORTS),
        # Remembered but busy: replaced; only the busy one.
        (PORTS, False, False, {9093}, Ports(9092, 1, 5432)),
        # A running server's ports are busy with itself: kept.
        (PORTS, True, True, {9092, 9093, 5432}, PORTS),
        (PORTS, True, False, {9092, 9093, 5432}, Ports(9092, 9093, 1)),
        # Two of ours on one port: the second one moves.
        (Ports(7000, 7000, 7001), False, False, set(), Ports(7000, 1, 7001)),
    ],
)
def test_ports_are_kept_while_they_can_be(remembered, kafka_up, postgres_up, busy, expected):
    chosen = choose_ports(
        remembered,
        kafka_up=kafka_up,
        postgres_up=postgres_up,
        is_free=lambda port: port not in busy,
        fresh=[1, 2, 3],
    )
    assert chosen == expected


def test_free_ports_are_distinct_and_free():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    assert all(port_is_free(p) for p in ports)


def test_the_ports_file_reads_what_infra_sh_wrote():
    text = "KAFKA_PORT=41001\nKAFKA_CONTROLLER_PORT=41002\nPG_PORT=\nJUNK=1\n"
    assert Ports.parse(text) == Ports(41001, 41002, None)
    assert Ports.parse(PORTS.render()) == PORTS
    assert PORTS.render() == "KAFKA_PORT=9092\nKAFKA_CONTROLLER_PORT=9093\nPG_PORT=5432\n"


def test_env_lines_are_what_the_makefile_evaluates():
    assert env_lines(PORTS) == (
        "SOUS_KAFKA_BOOTSTRAP=127.0.0.1:9092\n"
        "SOUS_DATABASE_URL=postgresql://sous@127.0.0.1:5432/sous\n"
    )
    sasl = "SOUS_KAFKA_SASL_USERNAME=sous-admin\nSOUS_LOCAL_KAFKA_USERS=/u\n"
    assert env_lines(PORTS, sasl).endswith("/sous\n" + sasl)


def test_a_secured_env_file_is_readable_by_its_owner_only(tmp_path: Path):
    layout = Layout(tmp_path)
    write_env(layout, "A=1\n", private=True)
    assert stat.S_IMODE(layout.env_file.stat().st_mode) == 0o600
    assert layout.env_file.read_text() == "A=1\n"
    write_env(layout, "A=2\n", private=False)
    assert stat.S_IMODE(layout.env_file.stat().st_mode) == 0o644


def props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {k: v for k, v in pairs}


def test_a_plain_broker_is_one_kraft_node_on_loopback():
    conf = props(server_properties(PORTS, Path("/data"), plain_listeners(PORTS)))
    assert conf["process.roles"] == "broker,controller"
    assert conf["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert conf["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert conf["log.dirs"] == "/data"
    assert conf["auto.create.topics.enable"] == "false"
    assert conf["group.initial.rebalance.delay.ms"] == "0"
    assert conf["offsets.topic.replication.factor"] == "1"
    assert "authorizer.class.name" not in conf


def test_a_secured_broker_authenticates_everyone_and_authorizes_by_acl():
    conf = props(server_properties(PORTS, Path("/data"), secure_listeners(PORTS, "pw")))
    assert conf["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert conf["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert conf["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert 'user_sous-admin="pw"' in conf["listener.name.controller.plain.sasl.jaas.config"]
    assert conf["super.users"] == "User:sous-admin"
    assert conf["allow.everyone.if.no.acl.found"] == "false"


def discover(environ=None, reported=None, debian=(), on_path=None, present=()):
    return find_bindir(
        environ or {},
        pg_config_bindir=lambda: reported,
        debian_dirs=debian,
        which=lambda name: on_path,
        executable=lambda p: str(p) in present,
    )


def test_server_binaries_are_found_in_the_documented_order():
    debian = [
        "/usr/lib/postgresql/9.6/bin",
        "/usr/lib/postgresql/17/bin",
        "/usr/lib/postgresql/16/bin",
    ]
    newest = "/usr/lib/postgresql/17/bin"
    present = {f"{d}/initdb" for d in debian} | {"/opt/pg/initdb", "/opt/pg/pg_ctl"}
    assert discover({"SOUS_PG_BINDIR": "/x"}, "/opt/pg", debian, present=present) == Path("/x")
    assert discover(reported="/opt/pg", debian=debian, present=present) == Path("/opt/pg")
    assert discover(reported="/nope", debian=debian, present=present) == Path(newest)
    assert discover(on_path="/opt/pg/initdb", present=present) == Path("/opt/pg")
    assert discover(on_path="/opt/pg/initdb", present={"/opt/pg/initdb"}) is None


def test_commands_on_a_folder_without_an_instance(tmp_path: Path):
    runner = CliRunner()
    folder = ["--dir", str(tmp_path / "none")]
    status = runner.invoke(infra_app, [*folder, "status"])
    assert status.exit_code == 3
    assert "kafka:    stopped" in status.output
    assert runner.invoke(infra_app, [*folder, "env"]).exit_code == 3
    assert runner.invoke(infra_app, [*folder, "start", "kafka"]).exit_code == 1
    assert runner.invoke(infra_app, [*folder, "stop", "zookeeper"]).exit_code == 2
