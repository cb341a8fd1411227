"""The infra commands: up, down, status, env, and start/stop of one server."""

from __future__ import annotations

import shutil
from enum import StrEnum

from sous.infra.errors import InfraError, log
from sous.infra.kafka import Kafka, probe
from sous.infra.layout import (
    ROOT,
    Layout,
    Ports,
    env_lines,
    load_ports,
    ready_timeout,
    save_ports,
    write_env,
)
from sous.infra.postgres import Postgres
from sous.infra.procs import choose_ports, free_ports, locked, port_is_free


class Server(StrEnum):
    """A server `start` and `stop` act on alone."""

    KAFKA = "kafka"
    POSTGRES = "postgres"


def _make_run_dir(layout: Layout) -> None:
    base = layout.run_dir.parent
    if not base.is_dir():
        base.mkdir(parents=True)
        base.chmod(0o755)
        if base == ROOT / ".run":  # the default run folder sits in the checkout: not for git
            (base / ".gitignore").write_text("*\n")
    # 0755: the postgres account (when we are root) must be able to pass through.
    layout.kafka_dir.mkdir(parents=True, exist_ok=True)
    layout.run_dir.chmod(0o755)


def _publish_env(layout: Layout, kafka: Kafka, ports: Ports, secure: bool) -> str:
    text = env_lines(ports, kafka.security_env() if secure else "")
    write_env(layout, text, private=secure)
    return text


def up(layout: Layout, *, secure: bool = False) -> str:
    """Start whatever is not running, wait until both are ready; return the env lines."""
    _make_run_dir(layout)
    with locked(layout.lock_file):
        kafka, postgres = Kafka(layout), Postgres(layout)
        postgres.bin("pg_ctl")
        postgres.prepare_dir()
        remembered = load_ports(layout)
        secure = kafka.check_security(secure)
        kafka_up = kafka.pid() is not None and remembered.kafka is not None
        postgres_up = postgres.pid() is not None and remembered.postgres is not None
        # Fast path: both already running and answering.
        if (
            kafka_up
            and postgres_up
            and probe(remembered.kafka or 0)
            and postgres.ready(remembered.postgres or 0)
        ):
            return _publish_env(layout, kafka, remembered, secure)
        ports = choose_ports(
            remembered,
            kafka_up=kafka_up,
            postgres_up=postgres_up,
            is_free=port_is_free,
            fresh=free_ports(3),
        )
        save_ports(layout, ports)
        if ports.kafka is None or ports.postgres is None:  # choose_ports fills every port
            raise InfraError("no free ports")
        # Start both before waiting for either: the JVM boots while initdb runs.
        if not kafka_up:
            kafka.start(ports, secure)
        if not postgres_up:
            postgres.start(ports.postgres, ready_timeout())
        postgres.wait(ports.postgres, ready_timeout())
        postgres.bootstrap(ports.postgres)
        kafka.wait(ports.kafka, ready_timeout())
        if secure:
            kafka.apply_acls(ports.kafka)
        log("ready")
        return _publish_env(layout, kafka, ports, secure)


def down(layout: Layout, *, purge: bool = False) -> None:
    """Stop both servers; keep the data unless `purge`."""
    if not layout.run_dir.is_dir():
        log("nothing to stop")
        return
    with locked(layout.lock_file):
        postgres = Postgres(layout)
        Kafka(layout).stop()
        postgres.stop()
        # The env lines name servers that no longer answer: a client must not find them.
        layout.env_file.unlink(missing_ok=True)
        if purge:
            log(f"removing {layout.run_dir}")
            if layout.postgres_link.is_symlink():  # the Postgres files live under /tmp
                shutil.rmtree(postgres.dir, ignore_errors=True)
            shutil.rmtree(layout.run_dir, ignore_errors=True)


def stop(layout: Layout, server: Server) -> None:
    """Stop one server; its ports, data and the env file stay for `start`."""
    if not layout.run_dir.is_dir():
        log("nothing to stop")
        return
    with locked(layout.lock_file):
        if server is Server.KAFKA:
            Kafka(layout).stop()
        else:
            Postgres(layout).stop()


def start(layout: Layout, server: Server) -> None:
    """Start one server again on its remembered port, with its data: clients reconnect."""
    ports = load_ports(layout)
    if ports.kafka is None or ports.controller is None or ports.postgres is None:
        raise InfraError(f"no instance in {layout.run_dir} (use: up)")
    with locked(layout.lock_file):
        if server is Server.KAFKA:
            kafka = Kafka(layout)
            if kafka.pid() is not None:
                return
            _require_free(ports.kafka, ports.controller)
            kafka.start(ports, kafka.secure())
            kafka.wait(ports.kafka, ready_timeout())
        else:
            postgres = Postgres(layout)
            if postgres.pid() is not None:
                return
            _require_free(ports.postgres)
            postgres.start(ports.postgres, ready_timeout())
            postgres.wait(ports.postgres, ready_timeout())
        log("ready")


def _require_free(*ports: int) -> None:
    busy = [port for port in ports if not port_is_free(port)]
    if busy:
        raise InfraError(f"port {busy[0]} is taken by another process; clients expect it here")


def status(layout: Layout) -> tuple[str, bool]:
    """State and ports of both servers, and whether both run."""
    kafka, postgres = Kafka(layout), Postgres(layout)
    ports = load_ports(layout)
    secured = " (SASL/SCRAM, ACLs)" if kafka.secure() else ""
    kpid, ppid = kafka.pid(), postgres.pid()
    lines = [
        f"kafka:    running (pid {kpid}) bootstrap 127.0.0.1:{ports.kafka}"
        f" controller 127.0.0.1:{ports.controller}{secured}"
        if kpid
        else f"kafka:    stopped{_last(ports.kafka)}",
        f"postgres: running (pid {ppid}) 127.0.0.1:{ports.postgres}"
        if ppid
        else f"postgres: stopped{_last(ports.postgres)}",
        f"run dir:  {layout.run_dir}",
    ]
    return "\n".join(lines) + "\n", bool(kpid and ppid)


def _last(port: int | None) -> str:
    return f" (last port {port})" if port else ""


def env(layout: Layout) -> str | None:
    """The env lines while both servers run, else None."""
    running = Kafka(layout).pid() and Postgres(layout).pid()
    return layout.env_file.read_text() if running and layout.env_file.is_file() else None
