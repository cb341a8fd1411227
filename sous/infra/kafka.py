"""The local broker's process: its classpath (Maven), storage format, start, readiness, stop."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sous.infra import kafka_config
from sous.infra.errors import InfraError, log
from sous.infra.layout import KAFKA_ADMIN, POM, Layout, Ports
from sous.infra.procs import cmdline, pid_alive, read_pid, tail, wait_gone

STOP_TIMEOUT_S = 30


def probe(port: int) -> bool:
    """True when a broker on 127.0.0.1:`port` answers an ApiVersions request.

    That proves the request path works, not just the listener.
    """
    client_id = b"sous-infra"
    # Request header v1 (api_key 18 ApiVersions, version 0, correlation id, client id), no body.
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = b""
            while len(buf) < 10:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
    except OSError:
        return False
    _size, correlation, error = struct.unpack(">iih", buf[:10])
    # 0 = OK, 35 = UNSUPPORTED_VERSION: either way the broker is serving requests.
    return bool(correlation == 4242 and error in (0, 35))


def cluster_id() -> str:
    """A random cluster id as `kafka-storage random-uuid` prints it, without a JVM start."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cid


def user_cache() -> Path:
    """Where resolved classpaths are kept for every run folder of this user."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "sous")


class Kafka:
    """One broker of a run folder."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.dir = layout.kafka_dir
        self.pid_file = self.dir / "kafka.pid"
        self.out = self.dir / "kafka.out"  # JVM stdout/stderr (crashes, JVM warnings)
        self.log4j = self.dir / "log4j2.properties"

    def pid(self) -> int | None:
        """Our broker's pid while it runs (a stale pid file is removed).

        Its command line must name our server.properties: a recycled pid or another broker
        is never taken for it.
        """
        pid = read_pid(self.pid_file)
        if pid and pid_alive(pid) and f"kafka.Kafka {self.layout.kafka_props}" in cmdline(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def secure(self) -> bool:
        """True when the storage was formatted with SASL/SCRAM."""
        return self.layout.security_file.is_file()

    def check_security(self, want_secure: bool) -> bool:
        """Whether to start secured: a folder keeps the choice made when it was formatted."""
        if self.secure():
            return True
        if want_secure and (self.layout.kafka_data / "meta.properties").exists():
            raise InfraError(
                f"Kafka in {self.layout.run_dir} was formatted without SASL; "
                "'down --purge' it or use another run folder"
            )
        return want_secure

    def classpath(self) -> str:
        """The broker classpath, resolved by Maven once per pom.xml, cached in the run folder.

        The jars themselves live in ~/.m2, which may have been cleaned since: each is checked.
        """
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
        cached = self.dir / f"classpath-{digest}.txt"
        # Another run folder's resolution (a test's private instance) saves a Maven start.
        shared = user_cache() / cached.name
        for candidate in (cached, shared):
            cp = candidate.read_text().strip() if candidate.is_file() else ""
            if cp and all(os.path.isfile(jar) for jar in cp.split(":")):
                if candidate is shared:
                    cached.write_text(cp + "\n")
                return cp
        if not shutil.which("mvn"):
            raise InfraError("mvn not found (needed once to resolve the Kafka jars)")
        log("resolving Kafka classpath with Maven")
        for old in self.dir.glob("classpath-*.txt"):
            old.unlink()
        tmp = cached.with_suffix(".tmp")
        args = ["-B", "-q", "-f", str(POM), "dependency:build-classpath"]
        args += ["-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={tmp}"]
        mvn_log = self.dir / "mvn.log"
        # Offline first: no network round trips when ~/.m2 already has everything.
        for offline in (["-o"], []):
            with mvn_log.open("w") as out:
                done = subprocess.run(["mvn", *offline, *args], stdout=out, stderr=out, check=False)
            if done.returncode == 0:
                tmp.replace(cached)
                with contextlib.suppress(OSError):
                    shared.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cached, shared)
                return cached.read_text().strip()
        print(tail(mvn_log, 50), file=sys.stderr)
        raise InfraError(f"maven could not resolve {POM}")

    def write_config(self, ports: Ports, secure: bool) -> None:
        """Write server.properties (mode 0600 when it holds passwords) and the log4j2 file."""
        if secure:
            from sous.kafka_security import password_in

            password = password_in(self.layout.users_dir / f"{KAFKA_ADMIN}.env")
            listeners = kafka_config.secure_listeners(ports, password)
        else:
            listeners = kafka_config.plain_listeners(ports)
        props = self.layout.kafka_props
        if secure:
            props.touch(mode=0o600)
            props.chmod(0o600)
        props.write_text(kafka_config.server_properties(ports, self.layout.kafka_data, listeners))
        self.log4j.write_text(kafka_config.log4j_properties(self.layout.kafka_log))

    def _format(self, cp: str, scram: list[str], secure: bool) -> None:
        """Format the log dir once; later starts reuse it (and its topics)."""
        if (self.layout.kafka_data / "meta.properties").exists():
            return
        id_file = self.dir / "cluster.id"
        if not (id_file.is_file() and id_file.read_text().strip()):
            id_file.write_text(cluster_id() + "\n")
        cid = id_file.read_text().strip()
        log(f"formatting Kafka storage (cluster id {cid})")
        format_log = self.dir / "format.log"
        config = str(self.layout.kafka_props)
        argv = ["java", "-cp", cp, "kafka.tools.StorageTool", "format", "--config", config]
        with format_log.open("w") as out:
            done = subprocess.run(
                [*argv, "--cluster-id", cid, *scram], stdout=out, stderr=out, check=False
            )
        if done.returncode:
            print(format_log.read_text(), file=sys.stderr)
            raise InfraError("kafka storage format failed")
        if secure:
            self.layout.security_file.write_text("SASL_PLAINTEXT SCRAM-SHA-512\n")

    def start(self, ports: Ports, secure: bool) -> None:
        """Start the broker in the background (readiness: `wait`)."""
        self.layout.kafka_data.mkdir(parents=True, exist_ok=True)
        self.layout.kafka_logs.mkdir(parents=True, exist_ok=True)
        cp = self.classpath()
        scram: list[str] = []
        if secure:
            from sous.kafka_security import MECHANISM, ensure_credentials

            for name, password in ensure_credentials(self.layout.users_dir).items():
                scram += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        self.write_config(ports, secure)
        self._format(cp, scram, secure)
        # A fresh log per start: readiness reads it, and a failed start must not show the
        # previous run's lines.
        log_file = self.layout.kafka_log
        for i in (2, 1):
            older = log_file.with_name(f"{log_file.name}.{i}")
            if older.exists():
                older.replace(log_file.with_name(f"{log_file.name}.{i + 1}"))
        if log_file.exists():
            log_file.replace(log_file.with_name(f"{log_file.name}.1"))
        log(f"starting Kafka on 127.0.0.1:{ports.kafka} (controller {ports.controller})")
        # Every partition holds open files and a test suite makes thousands of partitions:
        # lift the soft limit to the hard one (inherited by the broker).
        with contextlib.suppress(ValueError, OSError):
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        heap = shlex.split(os.environ.get("SOUS_KAFKA_HEAP_OPTS") or "-Xms256m -Xmx768m")
        jvm = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35"]
        jvm += ["-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
        jvm += [
            f"-Dlog4j2.configurationFile={self.log4j}",
            f"-Dkafka.logs.dir={self.layout.kafka_logs}",
        ]
        # A session of its own: the broker outlives us and no Ctrl-C aimed at our caller
        # reaches it. Output goes to a file, never to our stdout, so a caller reading our
        # stdout does not wait for the broker to exit.
        with self.out.open("wb") as out:
            proc = subprocess.Popen(
                ["java", *heap, *jvm, "-cp", cp, "kafka.Kafka", str(self.layout.kafka_props)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")

    def wait(self, port: int, timeout_s: float) -> None:
        """Wait until the broker logged its start and answers requests."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.pid() is None:
                self.fail("Kafka exited during startup")
            started = self.layout.kafka_log.is_file() and (
                "Kafka Server started" in self.layout.kafka_log.read_text(errors="replace")
            )
            if started and probe(port):
                return
            if time.monotonic() > deadline:
                self.fail(f"Kafka not ready after {timeout_s:.0f}s")
            time.sleep(0.3)

    def fail(self, reason: str) -> None:
        """Show the end of the broker's logs, stop it, and raise."""
        log(f"{reason}; last lines of {self.layout.kafka_log} and {self.out}:")
        print(tail(self.layout.kafka_log, 50), tail(self.out, 20), sep="\n", file=sys.stderr)
        self.stop()
        raise InfraError(reason)

    def stop(self) -> None:
        """Stop the broker (SIGTERM: a controlled shutdown; SIGKILL after a deadline)."""
        pid = self.pid()
        if pid is None:
            return
        log(f"stopping Kafka (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, STOP_TIMEOUT_S):
            log(f"Kafka did not stop within {STOP_TIMEOUT_S}s, killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 60)
        self.pid_file.unlink(missing_ok=True)

    def apply_acls(self, port: int) -> None:
        """Make the broker's ACLs equal the model (sous/kafka_access.py), as its super user."""
        log("applying Kafka ACLs")
        admin = (self.layout.users_dir / f"{KAFKA_ADMIN}.env").read_text().splitlines()
        env = {**os.environ, **dict(line.partition("=")[::2] for line in admin if "=" in line)}
        env["SOUS_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{port}"
        command = [sys.executable, "-m", "sous.kafka_security", "apply-acls"]
        if subprocess.run(command, env=env, stdout=sys.stderr, check=False).returncode:
            self.fail("applying Kafka ACLs failed")

    def security_env(self) -> str:
        """The env lines of a client of the secured broker (as the super user).

        The last line says where every principal's own lines are.
        """
        users = self.layout.users_dir
        admin = (users / f"{KAFKA_ADMIN}.env").read_text()
        return f"{admin}SOUS_LOCAL_KAFKA_USERS={users}\n"
