"""Secrets stay with their owners: a step reads only its domain's and kitchen's store, and no
secret or connection value appears in any step event or in the executor's log output."""

from __future__ import annotations

import signal
import textwrap

import pytest

from sous_contracts.common import StepStatus
from tests.executor.conftest import execute
from tests.executor.integration import executor_process

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

API_TOKEN = "s3cr3t-api-token-5b2f"
FILE_SECRET = "file-held-secret-91ac"
CONN_VALUE = "warehouse-password-77d0"
ADMIN_TOKEN = "registry-admin-token-c4e8"

MODULE = textwrap.dedent(
    """
    import os

    def leak():
        print("token is", os.environ["SOUS_SECRET_API_TOKEN"])
        raise RuntimeError("refused with " + os.environ["SOUS_SECRET_API_TOKEN"])
    """
)


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def test_secret_values_never_leave_the_executor(
    harness, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    secrets_dir = tmp_path / "secrets"
    write(secrets_dir / "sales" / "from_file", FILE_SECRET + "\n")
    write(secrets_dir / "sales" / "dev" / "wh_dsn", servers.database_url)
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "sous_leaky_steps.py").write_text(MODULE)
    log = tmp_path / "executor.log"
    proc = executor_process.start(
        kafka_settings,
        servers.database_url,
        drop_schema,
        log,
        extra_env={
            "SOUS_SECRET_SALES__CONN_PASSWORD": CONN_VALUE,
            "SOUS_SECRET_SALES__API_TOKEN": API_TOKEN,
        },
        secrets_dir=str(secrets_dir),
        python_path=f'["{steps}"]',
        log_level="DEBUG",
    )
    everything = {
        "secrets": ["api_token", "from_file"],
        "connections": {"db": "secret:conn_password"},
    }
    shell = execute(
        "shell",
        {
            "argv": [
                "sh",
                "-c",
                'echo "$SOUS_SECRET_API_TOKEN $SOUS_SECRET_FROM_FILE $SOUS_CONN_DB";'
                'echo "leaked=$SOUS_SECRET_FROM_FILE" > "$SOUS_OUTPUTS";'
                'echo "fail: $SOUS_CONN_DB" >&2; exit 4',
            ]
        },
        **everything,
    )
    python = execute("python", {"function": "sous_leaky_steps:leak"}, **everything)
    sql = execute(
        "sql",
        {"connection": "wh", "sql": f"SELECT '{API_TOKEN}'::int"},
        connections={"wh": "secret:wh_dsn"},
        secrets=["api_token"],
    )
    missing = execute(
        "sql", {"connection": "x", "sql": "SELECT 1"}, connections={"x": "secret:not_there"}
    )
    # A connection the step does not use cannot fail it.
    unused = execute("noop", connections={"x": "secret:not_there"})
    try:
        for c in (shell, python, sql, missing, unused):
            await harness.send(c)
        results = [await harness.finished(c, timeout=40) for c in (shell, python, sql, missing)]
        unused_done = await harness.finished(unused, timeout=40)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)

    shell_done, python_done, sql_done, missing_done = results
    assert shell_done.error.exit_code == 4
    assert "*** *** ***" in shell_done.log_tail
    assert shell_done.outputs.values == {"leaked": "***"}
    assert python_done.error.message == "RuntimeError: refused with ***"
    assert "token is ***" in python_done.log_tail
    assert sql_done.error.kind == "sql"
    assert '"***"' in sql_done.error.message
    assert missing_done.error.kind == "spec"
    assert "not_there" in missing_done.error.message
    assert all(r.status == StepStatus.FAILED for r in results)
    assert unused_done.status == StepStatus.SUCCEEDED

    output = log.read_text()
    assert "attempt finished" in output  # the log was captured
    events = b"\n".join(harness.raw).decode()
    for value in (API_TOKEN, FILE_SECRET, CONN_VALUE, servers.database_url):
        assert value not in events
        assert value not in output


async def test_the_executors_own_environment_is_not_a_secret_store(
    harness, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    """The leak this guards against: `env:SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN` printed by a step."""
    log = tmp_path / "executor.log"
    proc = executor_process.start(
        kafka_settings,
        servers.database_url,
        drop_schema,
        log,
        extra_env={"SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN": ADMIN_TOKEN},
        secrets_dir=str(tmp_path / "secrets"),
    )
    printing = {"argv": ["sh", "-c", 'echo "token: $SOUS_CONN_ADMIN"']}
    references = [
        "env:SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN",
        "secret:SOUS_DOMAIN_REGISTRY_ADMIN_TOKEN",
        "env:SOUS_DATABASE_URL",
    ]
    asks = [execute("shell", printing, connections={"admin": r}) for r in references]
    try:
        for c in asks:
            await harness.send(c)
        done = [await harness.finished(c, timeout=40) for c in asks]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)

    for command, finished in zip(asks, done, strict=True):
        reference = command.connections["admin"]
        variable = reference.partition(":")[2]
        assert finished.status == StepStatus.FAILED
        assert finished.error.kind == "spec"
        assert finished.error.message.startswith(
            f"reference {reference!r} is not in the secret store of domain 'sales', kitchen 'dev'"
        )
        assert f"{tmp_path}/secrets/sales/dev/{variable}" in finished.error.message
        assert f"$SOUS_SECRET_SALES__{variable}" in finished.error.message
        assert "token:" not in finished.log_tail  # the step never ran
    assert "never the service's environment" in done[0].error.message
    events = b"\n".join(harness.raw).decode()
    output = log.read_text()
    assert "attempt finished" in output
    for value in (ADMIN_TOKEN, servers.database_url):
        assert value not in events
    assert ADMIN_TOKEN not in output


def reads(connection: str) -> dict:
    """A shell step that tells which value its connection had, without printing it."""
    script = (
        'case "$SOUS_CONN_C" in'
        " finance-ledger-value) w=finance;; kitchen-value) w=kitchen;; domain-value) w=domain;;"
        " *) w=other;; esac;"
        ' echo "which=$w" > "$SOUS_OUTPUTS"'
    )
    return {"spec": {"argv": ["sh", "-c", script]}, "connections": {"c": connection}}


async def test_a_domain_cannot_read_another_domains_secret(
    harness, start_executor, tmp_path, monkeypatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    write(secrets_dir / "finance" / "ledger", "finance-ledger-value")
    monkeypatch.setenv("SOUS_SECRET_FINANCE__LEDGER_API", "finance-ledger-value")
    sales = [
        execute("shell", domain="sales", **reads("secret:ledger")),
        execute("shell", domain="sales", **reads("secret:ledger_api")),
        execute("shell", domain="sales", **reads("secret:../finance/ledger")),
    ]
    finance = [
        execute("shell", domain="finance", **reads("secret:ledger")),
        execute("shell", domain="finance", **reads("secret:ledger_api")),
    ]
    async with start_executor(secrets_dir=secrets_dir):
        done = [await harness.run(c) for c in (*sales, *finance)]
    refused, owned = done[: len(sales)], done[len(sales) :]
    assert [f.outputs.values for f in owned] == [{"which": "finance"}, {"which": "finance"}]
    assert all(f.status == StepStatus.FAILED and f.error.kind == "spec" for f in refused)
    assert "secret store of domain 'sales'" in refused[0].error.message
    assert "$SOUS_SECRET_SALES__LEDGER_API" in refused[1].error.message
    assert "no '/'" in refused[2].error.message
    assert "finance-ledger-value" not in b"\n".join(harness.raw).decode()


async def test_the_kitchens_secret_wins_over_the_domains(
    harness, start_executor, tmp_path, monkeypatch
) -> None:
    secrets_dir = tmp_path / "secrets"
    write(secrets_dir / "sales" / "dev" / "wh", "kitchen-value\n")
    write(secrets_dir / "sales" / "wh", "domain-value\n")
    monkeypatch.setenv("SOUS_SECRET_SALES__DEV__API", "kitchen-value")
    monkeypatch.setenv("SOUS_SECRET_SALES__API", "domain-value")
    steps = [
        execute("shell", kitchen="dev", **reads("secret:wh")),
        execute("shell", kitchen="prod", **reads("secret:wh")),
        execute("shell", kitchen="dev", **reads("secret:api")),
        execute("shell", kitchen="prod", **reads("secret:api")),
    ]
    async with start_executor(secrets_dir=secrets_dir):
        done = [await harness.run(c) for c in steps]
    assert [f.outputs.values.get("which") for f in done] == [
        "kitchen",
        "domain",
        "kitchen",
        "domain",
    ], [f.error for f in done]
