"""No secret or connection value appears in any step event or in the executor's log output."""

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

MODULE = textwrap.dedent(
    """
    import os

    def leak():
        print("token is", os.environ["SOUS_SECRET_API_TOKEN"])
        raise RuntimeError("refused with " + os.environ["SOUS_SECRET_API_TOKEN"])
    """
)


async def test_secret_values_never_leave_the_executor(
    harness, kafka_settings, servers, drop_schema, tmp_path
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "from_file").write_text(FILE_SECRET + "\n")
    (secrets_dir / "wh_dsn").write_text(servers.database_url)
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "sous_leaky_steps.py").write_text(MODULE)
    log = tmp_path / "executor.log"
    proc = executor_process.start(
        kafka_settings,
        servers.database_url,
        drop_schema,
        log,
        extra_env={"SOUS_TEST_CONN_PASSWORD": CONN_VALUE, "SOUS_SECRET_API_TOKEN": API_TOKEN},
        secrets_dir=str(secrets_dir),
        python_path=f'["{steps}"]',
        log_level="DEBUG",
    )
    everything = {
        "secrets": ["api_token", "from_file"],
        "connections": {"db": "env:SOUS_TEST_CONN_PASSWORD"},
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
