"""The local PostgreSQL server: binaries, data folder, start, readiness, bootstrap, stop."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sous.infra.errors import InfraError, log
from sous.infra.layout import DB_NAME, DB_USER, Layout
from sous.infra.procs import cmdline, pid_alive, read_pid, tail

OS_USER = "postgres"
"""The account that runs Postgres when we are root (Postgres refuses to run as root)."""
SUPERUSER = "postgres"
"""The bootstrap superuser initdb creates."""
SOCKET_PATH_MAX = 107
HBA = """# Local development/test server: no passwords, loopback only.
local all all              trust
host  all all 127.0.0.1/32 trust
"""


def _version_key(folder: str) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin by version (`sort -V`)."""
    version = Path(folder).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def find_bindir(
    environ: Mapping[str, str],
    *,
    pg_config_bindir: Callable[[], str | None],
    debian_dirs: Iterable[str],
    which: Callable[[str], str | None],
    executable: Callable[[Path], bool],
) -> Path | None:
    """The folder of the server binaries, or None.

    In order: `SOUS_PG_BINDIR`, pg_config's, the newest Debian one (kept off PATH, one per
    major version), then the one of an `initdb` on PATH.
    """
    if environ.get("SOUS_PG_BINDIR"):
        return Path(environ["SOUS_PG_BINDIR"])
    reported = pg_config_bindir()
    if reported and executable(Path(reported, "initdb")) and executable(Path(reported, "pg_ctl")):
        return Path(reported)
    newest = max(debian_dirs, key=_version_key, default=None)
    if newest and executable(Path(newest, "initdb")):
        return Path(newest)
    initdb = which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if executable(folder / "pg_ctl"):
            return folder
    return None


def _pg_config_bindir() -> str | None:
    if not shutil.which("pg_config"):
        return None
    done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def machine_bindir() -> Path | None:
    """The server binaries of this machine, if any."""
    return find_bindir(
        os.environ,
        pg_config_bindir=_pg_config_bindir,
        debian_dirs=glob.glob("/usr/lib/postgresql/*/bin"),
        which=shutil.which,
        executable=lambda p: os.access(p, os.X_OK),
    )


def is_root() -> bool:
    """True when we run as root (Postgres then runs as the postgres account)."""
    return os.geteuid() == 0


class Postgres:
    """The server of one run folder."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        link = layout.postgres_link
        # Follow the link into /tmp that prepare_dir may have made.
        self.dir = Path(os.readlink(link)) if link.is_symlink() else link
        self._bindir: Path | None = None

    @property
    def data(self) -> Path:  # noqa: D102
        return self.dir / "data"

    @property
    def log_file(self) -> Path:  # noqa: D102
        return self.dir / "postgres.log"

    def bin(self, name: str) -> str:
        """A server binary; found (or installed with apt-get, as root on Debian) on first use."""
        if self._bindir is None:
            self._bindir = machine_bindir()
            if self._bindir is None and is_root() and shutil.which("apt-get"):
                log("PostgreSQL server not found, installing it with apt-get")
                # Only the binaries are used; Debian's own cluster is not touched.
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                for step in (["update", "-q"], ["install", "-y", "-q", "postgresql"]):
                    done = subprocess.run(
                        ["apt-get", *step], env=env, stdout=sys.stderr, check=False
                    )
                    if done.returncode:
                        raise InfraError("apt-get install postgresql failed")
                self._bindir = machine_bindir()
            if self._bindir is None:
                raise InfraError("PostgreSQL server binaries not found (set SOUS_PG_BINDIR)")
        return str(self._bindir / name)

    def as_owner(self, *argv: str) -> list[str]:
        """`argv` run as the account that owns the data."""
        return ["runuser", "-u", OS_USER, "--", *argv] if is_root() else list(argv)

    def _own(self, path: Path) -> None:
        if is_root():
            user = pwd.getpwnam(OS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def prepare_dir(self) -> None:
        """Create the Postgres folder, owned by the account that runs the server.

        When root runs us from a folder that account cannot reach (a clone inside a home
        folder of mode 0700, a pytest tmp folder), the files go to a folder under /tmp and
        the run folder's `postgres` becomes a link to it.
        """
        link = self.layout.postgres_link
        if not is_root():
            self.dir.mkdir(parents=True, exist_ok=True)
            return
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            log(f"creating system user {OS_USER}")
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                 "/usr/sbin/nologin", OS_USER],
                stdout=sys.stderr, check=True,
            )  # fmt: skip
        if link.is_symlink() and not link.exists():  # its /tmp target vanished (a reboot)
            link.unlink()
            self.dir = link
        if not link.exists():
            link.mkdir(parents=True)
            self._own(link)
            link.chmod(0o700)
        reach = subprocess.run(self.as_owner("test", "-w", f"{link}/."), check=False)
        if reach.returncode:
            digest = hashlib.sha256(str(self.layout.run_dir).encode()).hexdigest()[:12]
            alt = Path(os.environ.get("TMPDIR") or "/tmp", f"sous-local-pg-{digest}")
            if not link.is_symlink():
                log(f"{OS_USER} cannot reach {link}; keeping Postgres files in {alt}")
            alt.mkdir(parents=True, exist_ok=True)
            self._own(alt)
            alt.chmod(0o700)
            if not link.is_symlink():
                link.rmdir()
                link.symlink_to(alt)
            self.dir = alt

    def pid(self) -> int | None:
        """Our postmaster's pid while it runs (postmaster.pid is Postgres's own pid file)."""
        pid = read_pid(self.data / "postmaster.pid")
        return pid if pid and pid_alive(pid) and "postgres" in cmdline(pid) else None

    def clear_stale_locks(self, port: int) -> None:
        """Fix the two stale-lock cases Postgres itself refuses to start in.

        Postgres removes its own stale lock files when their pid is gone (and checks that no
        old backend still uses the shared memory, so they are never deleted blindly here). It
        refuses when the old postmaster is a zombie not yet reaped (wait for it), or when its
        pid was recycled by an unrelated process (remove the file).
        """
        for lock in (self.data / "postmaster.pid", self.dir / f".s.PGSQL.{port}.lock"):
            pid = read_pid(lock)
            if pid is None:
                continue
            deadline = time.monotonic() + 10
            while _exists(pid) and not pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid) and "postgres" not in cmdline(pid):
                log(f"removing stale {lock.name} (pid {pid} is not Postgres)")
                lock.unlink(missing_ok=True)

    def _run(self, argv: list[str], output: Path | None = None) -> int:
        """Run a tool as the data's owner; output to a file, else to our stderr."""
        if output is None:
            return subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False
            ).returncode
        with output.open("w") as out:
            return subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=False
            ).returncode

    def init(self) -> None:
        """initdb, trust over the private socket folder and 127.0.0.1 only."""
        log("initializing PostgreSQL data folder")
        initdb_log = self.dir / "initdb.log"
        argv = [self.bin("initdb"), f"--pgdata={self.data}", f"--username={SUPERUSER}"]
        argv += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
        if self._run(self.as_owner(*argv), initdb_log):
            print(tail(initdb_log, 100), file=sys.stderr)
            raise InfraError("initdb failed")
        (self.data / "pg_hba.conf").write_text(HBA)
        # Settings that change between runs (the port) live in a file rewritten every start.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'sous_local.conf'\n")

    def start(self, port: int, timeout_s: float) -> None:
        """Start the server; pg_ctl waits for it with our deadline and returns early if it dies."""
        # A Unix socket path is limited to ~107 bytes; deep folders fall back to TCP only.
        socket_dir = str(self.dir) if len(str(self.dir)) + 20 < SOCKET_PATH_MAX else ""
        if not (self.data / "PG_VERSION").exists():
            self.init()
        settings = self.data / "sous_local.conf"
        settings.write_text(
            "# Generated by `sous infra` on every start; edits are overwritten.\n"
            f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{socket_dir}'\nunix_socket_permissions = 0700\n"
            "max_connections = 200\nshared_buffers = 128MB\n"
        )
        self._own(settings)
        self.clear_stale_locks(port)
        log(f"starting PostgreSQL on 127.0.0.1:{port}")
        argv = [self.bin("pg_ctl"), "start", "-w", "-t", str(int(timeout_s)), "-D", str(self.data)]
        if self._run(self.as_owner(*argv, "-l", str(self.log_file))):
            self.fail("PostgreSQL did not start")

    def ready(self, port: int) -> bool:
        """True when the server accepts connections over TCP (what clients use)."""
        argv = [self.bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        return (
            subprocess.run([*argv, "-d", "postgres", "-U", SUPERUSER], check=False).returncode == 0
        )

    def wait(self, port: int, timeout_s: float) -> None:
        """Wait until the server accepts TCP connections."""
        deadline = time.monotonic() + timeout_s
        while not self.ready(port):
            if self.pid() is None:
                self.fail("PostgreSQL exited during startup")
            if time.monotonic() > deadline:
                self.fail(f"PostgreSQL not ready after {timeout_s:.0f}s")
            time.sleep(0.2)

    def fail(self, reason: str) -> None:
        """Show the end of the server log, stop the server, and raise."""
        log(f"{reason}; last lines of {self.log_file}:")
        print(tail(self.log_file, 50), file=sys.stderr)
        self.stop()
        raise InfraError(reason)

    def _psql(self, port: int, sql: str) -> str:
        argv = [self.bin("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        argv += ["-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            raise InfraError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def bootstrap(self, port: int) -> None:
        """The application's role and database (idempotent)."""
        if not self._psql(port, f"SELECT 1 FROM pg_roles WHERE rolname = '{DB_USER}'"):
            self._psql(port, f"CREATE ROLE {DB_USER} LOGIN SUPERUSER")
        if not self._psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
            log(f"creating database {DB_NAME}")
            self._psql(port, f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate if that does not finish)."""
        if self.pid() is None:
            return
        log("stopping PostgreSQL")
        ctl = [self.bin("pg_ctl"), "stop", "-D", str(self.data), "-w"]
        if self._run(self.as_owner(*ctl, "-m", "fast", "-t", "60")):
            self._run(self.as_owner(*ctl, "-m", "immediate"))


def _exists(pid: int) -> bool:
    """True while the pid exists at all, zombie or not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
