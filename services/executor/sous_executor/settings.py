"""Executor settings, read from `SOUS_EXECUTOR_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


class ExecutorSettings(BaseSettings):
    """How one executor replica runs steps."""

    model_config = SettingsConfigDict(env_prefix="SOUS_EXECUTOR_", extra="ignore")

    schema_name: str = "executor"
    """PostgreSQL schema the executor owns: attempts table, outbox."""
    concurrency: int = 4
    """Step attempts one replica runs at once; further ExecuteSteps wait (backpressure)."""
    worker_id: str | None = None
    """This replica's id in StepStarted/Heartbeat/Finished; default service@host:pid."""
    secrets_dir: Path | None = None
    """Folder of the domains' secret files, e.g. a mounted volume: `secret:NAME` of a step is
    `<dir>/<domain>/<kitchen>/NAME`, else `<dir>/<domain>/NAME` (see `sous_common.references`)."""
    work_root: Path | None = None
    """Where fresh per-attempt working folders are made; default the system temp folder."""
    domains_root: Path | None = None
    """Folder holding one folder per domain (a mesh checkout). A step's relative `cwd`
    resolves against its domain's folder there, so scripts shipped with the specs run."""
    keep_workdirs: bool = False
    """Keep working folders after an attempt (debugging)."""
    pass_env: tuple[str, ...] = DEFAULT_PASS_ENV
    """Executor environment variables passed through to shell and python steps."""
    python_path: tuple[str, ...] = ()
    """Folders put first on PYTHONPATH for python steps (where step modules live)."""
    warm_python: bool = True
    """Fork python steps from a warm interpreter of their domain (see the README); a step
    whose spec says `cold: true` still gets a fresh one."""
    warm_parents_max: int = 8
    """Domains with a warm interpreter at once; the least recently used one goes first."""
    kill_grace_s: float = 0.5
    """Seconds between SIGTERM and SIGKILL when a step is cancelled or times out."""
    shutdown_grace_s: float = 10.0
    """Seconds a stopping replica lets its running attempts finish; those still running then
    are stopped and reported with error kind `shutdown`, which the scheduler dispatches again
    at once. Keep it below the time the process manager waits before killing the replica."""
    http_attempts: int = 3
    """Tries of an http step on 5xx and connection errors."""
    http_backoff_s: float = 0.2
    """Wait before the second http try; doubles each time."""
    max_event_bytes: int = 512_000
    """Largest StepFinished (outputs included); larger outputs fail the step instead."""
    returning_rows_max: int = 100
    """Rows of a RETURNING clause kept in the outputs."""
    sql_record_schema: str = "sous"
    """Schema, in each sql step's own database, of the `sql_step_runs` table that records
    the steps whose transaction committed (created on first use; see the README)."""
    log_level: str = "INFO"
    """Log level."""
    log_json: bool = True
    """JSON log lines (else human-readable)."""
