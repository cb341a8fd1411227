"""The Run view tells what started the run and which runs it triggered, linked."""

from __future__ import annotations

import uuid

import pytest

from sous_contracts.runs import OrderRunStarted, RunCause
from tests.console.integration.test_read_model import until
from tests.console.integration.test_web import signed_in
from tests.scheduler.standins import send

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def started(domain: str, cause: RunCause) -> OrderRunStarted:
    return OrderRunStarted(
        order_run_id=uuid.uuid4(),
        domain=domain,
        recipe="make",
        variation="prod",
        kitchen="prod",
        cause=cause,
    )


def after(trigger: str, upstream: OrderRunStarted) -> RunCause:
    return RunCause(
        kind="trigger",
        trigger=trigger,
        upstream_order_run_ids=[upstream.order_run_id],
        upstream_message_ids=[uuid.uuid4()],
    )


async def test_the_run_page_links_its_cause_and_what_it_triggered(console, kafka_settings) -> None:
    payments = started("payments", RunCause(kind="command", principal="alice"))
    finance = started("finance", after("finance/make#after-payments", payments))
    marketing = started("marketing", after("marketing/make#after-finance", finance))
    unrelated = started("sales", RunCause(kind="command", principal="bob"))
    await send(kafka_settings, [payments, finance, marketing, unrelated])
    ids = [m.order_run_id for m in (payments, finance, marketing, unrelated)]
    await until(
        console.pool,
        "SELECT count(*) = 4 FROM runs WHERE order_run_id = ANY($1::uuid[]) AND cause IS NOT NULL",
        ids,
    )
    async with signed_in(console, {"*": ["read"]}) as (client, _):
        first = (await client.get(f"/runs/{payments.order_run_id}")).text
        middle = (await client.get(f"/runs/{finance.order_run_id}")).text
    assert 'data-kind="command"' in first
    assert '<strong class="principal">alice</strong>' in first
    assert f'<a href="/runs/{finance.order_run_id}">finance/make</a>' in first
    assert "trigger <code>finance/make#after-payments</code>" in middle
    upstream = middle[middle.index('<ul id="upstream">') : middle.index("Runs it triggered")]
    assert f'<a href="/runs/{payments.order_run_id}">payments/make</a>' in upstream
    downstream = middle[middle.index('<ul id="downstream">') :]
    assert f'<a href="/runs/{marketing.order_run_id}">marketing/make</a>' in downstream
    assert "via marketing/make#after-finance" in downstream
    for page in (first, middle):
        assert str(unrelated.order_run_id) not in page

    # A reader of payments and finance only: the marketing run is not linked, only counted.
    async with signed_in(console, {"payments": ["read"], "finance": ["read"]}) as (client, _):
        partial = (await client.get(f"/runs/{finance.order_run_id}")).text
    assert str(marketing.order_run_id) not in partial
    assert "1 linked run(s) of domains you may not read are not shown" in partial
    assert f'<a href="/runs/{payments.order_run_id}">payments/make</a>' in partial
