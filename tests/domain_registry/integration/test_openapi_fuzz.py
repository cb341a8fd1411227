"""Property-based run against the served OpenAPI document: no 5xx, each answer as documented."""

from __future__ import annotations

import threading
import time

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from sous.infra.procs import free_ports
from sous_domain_registry.api import create_api
from sous_domain_registry.settings import RegistrySettings
from tests.domain_registry.conftest import ADMIN_TOKEN
from tests.domain_registry.mesh import mesh_files

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import response_schema_conformance, status_code_conformance  # noqa: E402
from schemathesis.errors import FailureGroup  # noqa: E402

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONFORMANCE = [status_code_conformance, response_schema_conformance]
MAX_BODY_BYTES = 256 * 1024  # far above what the fuzzed bodies reach; small enough to send


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
    port = free_ports(1)[0]
    config = RegistrySettings(
        port=port,
        schema_name=schema,
        admin_token=SecretStr(ADMIN_TOKEN),
        max_body_bytes=MAX_BODY_BYTES,
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


def _operations(url: str) -> list:
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 18
    return operations


def _undocumented(case, response, headers: dict[str, str]) -> str | None:
    """Return what is wrong when the status served, or its body, is not the one documented."""
    try:
        case.validate_response(response, checks=CONFORMANCE, headers=headers)
    except FailureGroup as failures:
        reasons = "; ".join(sorted({f.title for f in failures.exceptions}))
        return f"{case.operation.label}: {response.status_code} ({reasons})"
    return None


# schemathesis' own strategies use `random`, which Hypothesis warns about; not ours to fix.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_server_error_and_every_status_served_is_documented(served_url):
    server_errors: list[str] = []
    undocumented: set[str] = set()
    statuses: list[int] = []

    for operation in _operations(served_url):

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
            if (problem := _undocumented(case, response, AUTH)) is not None:
                undocumented.add(problem)

        exercise()
    assert server_errors == []
    assert not undocumented, "not as documented:\n" + "\n".join(sorted(undocumented))
    assert len(statuses) >= 200
    assert sum(200 <= s < 300 for s in statuses) >= 20, sorted(set(statuses))


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_refusals_an_admin_never_gets_are_documented_too(served_url):
    """401 without a token, 403 with a token of no scope, 413 for a body over the limit."""
    r = httpx.post(
        f"{served_url}/v1/tokens", json={"principal": "nobody", "scopes": {}}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    nobody = {"Authorization": f"Bearer {r.json()['token']}"}
    undocumented: set[str] = set()
    statuses: dict[str, set[int]] = {"anonymous": set(), "nobody": set(), "oversized": set()}

    for operation in _operations(served_url):

        @given(case=operation.as_strategy())
        @settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
        def refuse(case) -> None:
            secured = "security" in case.operation.definition.raw
            calls = {"anonymous": {}, "nobody": nobody}
            for who, headers in calls.items():
                response = case.call(headers=headers, timeout=30)
                statuses[who].add(response.status_code)
                if who == "anonymous" and secured:
                    assert response.status_code == 401, (case.operation.label, response.text)
                if (problem := _undocumented(case, response, headers)) is not None:
                    undocumented.add(problem)
            if len(case.operation.body):
                case.body = {"padding": "x" * MAX_BODY_BYTES}
                response = case.call(headers=AUTH, timeout=30)
                statuses["oversized"].add(response.status_code)
                assert response.status_code == 413, (case.operation.label, response.text)
                if (problem := _undocumented(case, response, AUTH)) is not None:
                    undocumented.add(problem)

        refuse()
    assert not undocumented, "not as documented:\n" + "\n".join(sorted(undocumented))
    assert 401 in statuses["anonymous"], statuses
    assert 403 in statuses["nobody"], statuses
    assert statuses["oversized"] == {413}
