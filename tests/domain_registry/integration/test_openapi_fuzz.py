"""Property-based run against the served OpenAPI document: no request gets a 5xx."""

from __future__ import annotations

import threading
import time

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings
from tests.domain_registry.conftest import ADMIN_TOKEN
from tests.domain_registry.integration.test_cli import free_port
from tests.domain_registry.mesh import mesh_files

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def served_url(servers):
    import asyncio
    import uuid

    from sous_common.settings import DatabaseSettings, KafkaSettings
    from sous_common.topic_admin import ensure_topics

    kafka = KafkaSettings(
        bootstrap=servers.kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:12]}."
    )
    asyncio.run(ensure_topics(kafka))
    database = DatabaseSettings(url=servers.database_url, pool_max=5)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    port = free_port()
    config = RegistrySettings(
        port=port,
        schema_name=schema,
        admin_token=SecretStr(ADMIN_TOKEN),
        kafka=kafka,
        database=database,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_api(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "registry did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    r = httpx.post(f"{url}/v1/apply", json={"files": mesh_files()}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    yield url
    server.should_exit = True
    thread.join(15)

    async def drop() -> None:
        conn = await asyncpg.connect(database.url)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


# schemathesis' own strategies use `random`, which Hypothesis warns about; not ours to fix.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_request_gets_a_server_error(served_url):
    api = schemathesis.openapi.from_url(f"{served_url}/openapi.json")
    server_errors: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 18

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case) -> None:
            try:
                response = case.call(headers=AUTH, timeout=30)
            except Exception as exc:  # a dropped connection is as bad as a 5xx: report it
                server_errors.append(f"{case.method} {case.formatted_path}: {exc!r}")
                return
            statuses.append(response.status_code)
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        exercise()
    assert server_errors == []
    assert len(statuses) >= 200
    assert sum(200 <= s < 300 for s in statuses) >= 20, sorted(set(statuses))
