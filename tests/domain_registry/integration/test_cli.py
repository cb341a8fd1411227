"""`sous apply` and `sous kitchen` against the registry served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from sous.cli import app
from sous.infra.procs import free_ports
from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings
from tests.domain_registry.conftest import ADMIN_TOKEN
from tests.domain_registry.mesh import MESH
from tests.domain_registry.run_events import produce, run_events, wait_for_run

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def served(kafka_settings, db_settings, schema):
    port = free_ports(1)[0]
    settings = RegistrySettings(
        port=port,
        schema_name=schema,
        admin_token=SecretStr(ADMIN_TOKEN),
        kafka=kafka_settings,
        database=db_settings,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_api(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 15)
    conn = await asyncpg.connect(db_settings.url)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


async def sous(url: str, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    """Run the CLI in-process (in a thread, so the served API keeps answering)."""
    env = {"SOUS_REGISTRY_URL": url, "SOUS_TOKEN": token, "COLUMNS": "200"}
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


async def sous_process(url: str, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    """Run the CLI as a process, as a user would."""
    env = {**os.environ, "SOUS_REGISTRY_URL": url, "SOUS_TOKEN": token, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from sous.cli import main; main()",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_applies_dry_runs_refuses_and_manages_kitchens(
    served, tmp_path: Path, kafka_settings, db_settings, schema
):
    code, out = await sous(served, "apply", str(MESH), "--dry-run")
    assert code == 0, out
    assert "would change" in out
    code, out = await sous(served, "apply", str(MESH))
    assert (code, "recipe:sales/daily" in out) == (0, True), out
    code, out = await sous(served, "apply", str(MESH / "sales"))
    assert (code, "no changes" in out) == (0, True), out

    broken = tmp_path / "sales"
    (broken / "recipes").mkdir(parents=True)
    (broken / "sql").mkdir()
    for p in (MESH / "sales").rglob("*.*"):
        if p.suffix in (".yaml", ".sql"):
            target = broken / p.relative_to(MESH / "sales")
            target.write_text(p.read_text())
    daily = broken / "recipes" / "daily.yaml"
    daily.write_text(daily.read_text().replace("needs: [ingest]", "needs: [lod]"))
    code, out = await sous_process(served, "apply", str(broken))
    assert code == 1, out
    assert "sales/recipes/daily.yaml: steps.staging.needs[0]: unknown step 'lod'" in out
    assert "Traceback" not in out

    code, out = await sous(served, "apply", str(MESH), token="wrong")
    assert (code, "unknown or revoked token" in out) == (2, True), out
    code, out = await sous("http://127.0.0.1:9", "apply", str(MESH))
    assert (code, "cannot reach the registry" in out) == (2, True), out
    code, out = await sous(served, "apply", str(tmp_path / "missing"))
    assert code == 2, out

    code, out = await sous(served, "kitchen", "create", "dev-alice", "--from", "dev", "--ttl", "1d")
    assert code == 0, out
    code, out = await sous(served, "apply", str(broken), "--kitchen", "dev-alice")
    assert (code, "unknown step 'lod'" in out) == (1, True), out
    fixed = daily.read_text().replace("needs: [lod]", "needs: [ingest]")
    daily.write_text(
        fixed.replace("default: 1, description: Fewest", "default: 5, description: Fewest")
    )
    code, out = await sous(served, "apply", str(broken), "--kitchen", "dev-alice")
    assert (code, "recipe:sales/daily@dev-alice" in out) == (0, True), out
    code, out = await sous(served, "kitchen", "merge", "dev-alice")
    assert (code, "since it changed sales/daily" in out) == (1, True), out
    conn = await asyncpg.connect(db_settings.url)
    try:
        version = await conn.fetchval(
            f'SELECT version FROM "{schema}".entities'
            " WHERE entity_id = 'recipe:sales/daily@dev-alice'"
        )
    finally:
        await conn.close()
    run_id = uuid.uuid4()
    await produce(
        kafka_settings, run_events(run_id, "dev-alice", error_failed=0, spec_version=version)
    )
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=served, headers=headers) as client:
        await wait_for_run(client, run_id, "succeeded")
    code, out = await sous(served, "kitchen", "merge", "dev-alice")
    assert (code, "merged into dev" in out) == (0, True), out
    code, out = await sous(served, "kitchen", "delete", "dev-alice")
    assert code == 1, out
