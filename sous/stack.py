"""`sous up` / `sous down`: the whole mesh on one machine, supervised, with the examples."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from sous import keys_cmd, run_folder
from sous.infra.procs import free_ports

if TYPE_CHECKING:
    from sous.supervisor import Supervisor


class Terminal(Console):
    """A console that a closed pipe silences, where rich's would exit the program.

    `sous up | tee up.log` and Ctrl-C: tee is gone before the supervisor has stopped the
    services; printing must not end the supervisor, nor keep it from stopping them.
    """

    def on_broken_pipe(self) -> None:
        """Print nothing more; let interpreter exit flush stdout into nothing."""
        self.quiet = True
        if self.file is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


console = Terminal()
ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "deploy" / "local" / "infra.sh"
EXAMPLES = ROOT / "examples" / "mesh"
EXAMPLE_DAY = "2026-11-24"
"""A business day the shipped example data (examples/data/orders.csv) holds orders for."""
CLI = ".venv/bin/sous"
"""The CLI as the README and `sous up` name it: `make` installs it there, uv on PATH or not."""
NEXT_STEPS = (
    "\nTry next, in another terminal:\n"
    f"  {CLI} tail                      # runs and test results as they happen\n"
    f"  {CLI} run sales/daily --variation dev -p day=2026-11-25 --wait\n"
    f"  {CLI} runs                      # recent runs\n"
    f"  {CLI} down                      # stop everything\n"
    "Ctrl-C here stops the services."
)


def run_dir() -> Path:
    """Where the stack keeps logs, pids and the local token."""
    return run_folder.stack_dir()


def stack_keys(folder: Path) -> dict[str, str]:
    """Create the stack's signing keys once; return the variables that point at them.

    The registry and the scheduler each sign with their own key; the CLI signs as `admin`,
    whose public key the registry publishes at start-up. Private keys stay in `folder`.
    """
    from sous_common.trust import Signer

    keys = folder / "keys"
    found = {}
    for name in ("domain-registry", "scheduler", "admin"):
        path = keys / f"{name}.pem"
        if not path.exists():
            Signer.generate(name).save(path)
        found[name] = Signer.load(name, path)
    return {
        "SOUS_DOMAIN_REGISTRY_SIGNING_KEY_FILE": str(keys / "domain-registry.pem"),
        "SOUS_SCHEDULER_SIGNING_KEY_FILE": str(keys / "scheduler.pem"),
        "SOUS_DOMAIN_REGISTRY_ADMIN_PUBLIC_KEY": found["admin"].public_key,
        keys_cmd.KEY_FILE: str(keys / "admin.pem"),
        keys_cmd.PRINCIPAL: "admin",
    }


def servers() -> dict[str, str]:
    """Configured servers, or local ones started from deploy/local."""
    if os.environ.get("SOUS_KAFKA_BOOTSTRAP") and os.environ.get("SOUS_DATABASE_URL"):
        return {k: os.environ[k] for k in ("SOUS_KAFKA_BOOTSTRAP", "SOUS_DATABASE_URL")}
    console.print("starting local Kafka and PostgreSQL (deploy/local) …")
    out = subprocess.run(
        ["bash", str(INFRA), "up"], check=True, capture_output=True, text=True, timeout=900
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def stack_environments(environ: Mapping[str, str], token: str) -> dict[str, dict[str, str]]:
    """Return the environment of every service of the stack; what `environ` sets wins.

    The stack adds the admin token (the registry's only), the examples' folder (the
    executor's) and each example domain's `warehouse` secret: `SOUS_WAREHOUSE_DSN`, else the
    stack's own database. The interpreter the stack runs with comes first on `PATH`, so a
    step's `python` has the project's libraries however `sous up` was started.
    """
    from sous.environments import example_secrets, service_environment
    from sous.supervisor import SERVICES

    warehouse = environ.get("SOUS_WAREHOUSE_DSN") or environ["SOUS_DATABASE_URL"]
    defaults = {
        "SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN": token,
        "SOUS_EXECUTOR_DOMAINS_ROOT": str(EXAMPLES),
        **example_secrets(EXAMPLES, warehouse),
    }
    merged = {**defaults, **environ}
    here = str(Path(sys.executable).parent)
    merged["PATH"] = os.pathsep.join(
        [here, *(p for p in merged.get("PATH", "").split(os.pathsep) if p and p != here)]
    )
    return {name: service_environment(name, merged) for name in SERVICES}


def registry_url() -> str:
    """Return the address of the registry `sous up` starts, recorded for this checkout's CLI.

    The user's `SOUS_REGISTRY_URL` wins. Otherwise the registry listens on
    `SOUS_DOMAIN_REGISTRY_PORT` (8470), or on a free port when another program (another
    stack's registry, say) holds that one.
    """
    configured = os.environ.get(run_folder.REGISTRY_URL)
    if configured and configured != run_folder.recorded_registry():
        return configured
    preferred = int(os.environ.get(run_folder.REGISTRY_PORT, run_folder.DEFAULT_REGISTRY_PORT))
    port = run_folder.free_port(preferred)
    if port != preferred:
        console.print(f"[yellow]port {preferred} is taken[/]; the registry listens on {port}")
    url = f"http://127.0.0.1:{port}"
    os.environ[run_folder.REGISTRY_PORT] = str(port)
    os.environ[run_folder.REGISTRY_URL] = url
    run_folder.registry_file().write_text(url + "\n")
    return url


def console_address(registry: str) -> str:
    """Point the console at the registry, on `SOUS_CONSOLE_PORT` (8090) or a free port."""
    os.environ.setdefault("SOUS_CONSOLE_REGISTRY_URL", registry)
    preferred = int(os.environ.get("SOUS_CONSOLE_PORT", "8090"))
    port = run_folder.free_port(preferred)
    os.environ["SOUS_CONSOLE_PORT"] = str(port)
    return f"http://127.0.0.1:{port}"


def ops_addresses(folder: Path, names: list[str], taken: set[int]) -> dict[str, str]:
    """Give every service a free ops port; record the addresses in `folder/ops`.

    Ports the system picks, not 9400 for all: the services share this machine's network.
    `taken`: ports chosen for the stack but not listened on yet (the registry's, the
    console's). Each service keeps its port across restarts (same environment).
    """
    ports = free_ports(len(names), taken)
    found = {name: f"http://127.0.0.1:{port}" for name, port in zip(names, ports, strict=True)}
    (folder / "ops").write_text("".join(f"{name}={url}\n" for name, url in found.items()))
    return found


def with_ops_ports(
    environments: dict[str, dict[str, str]], addresses: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """Return the environments with each service's ops endpoint on its own port."""
    return {
        name: {
            **env,
            "SOUS_OPS_HOST": "127.0.0.1",
            "SOUS_OPS_PORT": addresses[name].rsplit(":", 1)[1],
        }
        for name, env in environments.items()
    }


def wait_ready(
    addresses: Mapping[str, str], supervisor: Supervisor, timeout_s: float = 120
) -> None:
    """Wait until every service answers its `/readyz` with 200 (caught up, consuming)."""
    import httpx

    waiting = dict(addresses)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for note in supervisor.check():
            console.print(f"[yellow]{escape(note)}[/]")
        for name, url in list(waiting.items()):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    del waiting[name]
            except httpx.HTTPError:
                pass
        if waiting:
            time.sleep(0.2)
    if waiting:
        raise RuntimeError(
            f"not ready within {timeout_s:.0f}s: {', '.join(waiting)}"
            f" (see their logs in {supervisor.run_dir})"
        )


def wait_registry(url: str, token: str, supervisor: Supervisor, timeout_s: float = 90) -> None:
    """Wait until this stack's registry answers: one that refuses the stack's token is not it."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for note in supervisor.check():
            console.print(f"[yellow]{escape(note)}[/]")
        try:
            r = httpx.get(
                f"{url}/v1/domains", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 200:
            return
        if r is not None and r.status_code in (401, 403):
            raise RuntimeError(
                f"the registry at {url} is not this stack's: it refused this stack's token"
                f" ({r.status_code}). Another stack listens there; stop it, or set"
                f" {run_folder.REGISTRY_URL} and {run_folder.REGISTRY_PORT} to a free port"
            )
        time.sleep(0.5)
    raise RuntimeError(f"the registry did not answer at {url} within {timeout_s:.0f}s")


def up(
    examples: bool = typer.Option(True, help="Apply examples/mesh and start a first run."),
) -> None:
    """Start Kafka, PostgreSQL and every service; apply the examples; Ctrl-C stops all."""
    import asyncio
    import secrets

    from sous import apply_cmd
    from sous.kafka_io import start_run
    from sous.supervisor import Supervisor
    from sous_common.settings import KafkaSettings
    from sous_common.topic_admin import ensure_topics

    folder = run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    pid_file = folder / "supervisor.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        console.print(f"[red]the stack already runs[/] (pid {pid_file.read_text()}); `sous down`")
        raise typer.Exit(1)
    os.environ.update(servers())
    asyncio.run(ensure_topics(KafkaSettings()))
    token_file = folder / "token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(32))
        token_file.chmod(0o600)
    token = token_file.read_text().strip()
    for key, value in stack_keys(folder).items():
        os.environ.setdefault(key, value)
    url = registry_url()
    console_url = console_address(url)
    environments = stack_environments(os.environ, token)
    taken = {int(address.rsplit(":", 1)[1]) for address in (url, console_url)}
    ops = ops_addresses(folder, list(environments), taken)
    supervisor = Supervisor(folder, with_ops_ports(environments, ops))
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: terminal closed
        signal.signal(signum, on_signal)
    with supervised(supervisor, pid_file):
        wait_registry(url, token, supervisor)
        wait_ready(ops, supervisor)
        console.print(
            f"[green]services ready[/]: {', '.join(supervisor.pids())}  (logs in {folder})"
        )
        console.print(
            "ops endpoints (/healthz /readyz /metrics): "
            + "  ".join(f"{name} {address}" for name, address in ops.items())
        )
        console.print(
            f"ops console: [bold]{console_url}[/] (sign in with the token in {token_file})"
        )
        os.environ["SOUS_TOKEN"] = token
        if examples:
            apply_cmd.apply(EXAMPLES, kitchen=None, dry_run=False, url=url, token=token)
            for domain, recipe in (("sales", "daily"), ("payments", "settle")):
                run_id = start_run(
                    domain, recipe, variation="dev", kitchen=None, params={"day": EXAMPLE_DAY}
                )
                console.print(
                    f"started {domain}/{recipe} (dev, day {EXAMPLE_DAY}): [bold]{run_id}[/]"
                )
            console.print("finance/revenue follows once both finish, then marketing/dashboard.")
        console.print(NEXT_STEPS)
        while not stop["now"]:
            for note in supervisor.check():
                console.print(f"[yellow]{escape(note)}[/]")
            time.sleep(0.5)


@contextlib.contextmanager
def supervised(
    supervisor: Supervisor, pid_file: Path, out: Console = console
) -> Iterator[Supervisor]:
    """Start every service; stop them all on the way out, whatever ends the block."""
    supervisor.start_all()
    pid_file.write_text(str(os.getpid()))
    try:
        yield supervisor
    finally:
        try:
            out.print("stopping services …")
        finally:
            supervisor.stop_all()
            pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def down(
    keep_servers: bool = typer.Option(False, help="Leave local Kafka and PostgreSQL running."),
) -> None:
    """Stop the services started by `sous up`, then the local servers deploy/local started."""
    from sous.supervisor import stop_recorded

    folder = run_dir()
    pid_file = folder / "supervisor.pid"
    stopped = False
    if pid_file.exists() and _alive(pid := int(pid_file.read_text())):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped = True
    pid_file.unlink(missing_ok=True)
    # Whatever a dead (or stuck) supervisor left behind, found by its pid files.
    if stop_recorded(folder):
        stopped = True
    console.print("services stopped" if stopped else "no services running")
    if not keep_servers and not run_folder.servers_of_the_user(os.environ):
        subprocess.run(["bash", str(INFRA), "down"], check=False, timeout=120)


def service(
    name: str = typer.Argument(help="domain-registry, scheduler, executor, test-runner, console"),
) -> None:
    """Run one service in the foreground (as the supervisor does)."""
    from sous.environments import service_environment
    from sous.supervisor import service_argv

    try:
        argv = service_argv(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        raise typer.Exit(2) from None
    os.execve(argv[0], argv, service_environment(name, os.environ))  # replaces this process
