"""The console in headless Chromium against the real stack: sign in, watch, act."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from playwright.async_api import Browser, Page, expect

from sous_common.kafka import aiokafka_options
from sous_contracts import decode_message
from sous_contracts.tests import TestResult
from sous_contracts.topics import TEST_RESULTS
from tests.console.e2e.conftest import SHOTS, SLOW_DOMAIN, Stack
from tests.domain_registry.integration.test_kitchen_apply import sandbox_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

DAY = "2026-11-24"


async def sign_in(browser: Browser, stack: Stack, token: str) -> Page:
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await page.goto(stack.console + "/runs")
    await expect(page).to_have_url(f"{stack.console}/sign-in?next=/runs")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{stack.console}/runs")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def live(page: Page) -> None:
    """Wait until the page's event stream is open."""
    await expect(page.locator("#live")).to_have_text("● live", timeout=10_000)


async def test_mesh_shows_the_example_domains_and_their_trigger_edges(browser, stack) -> None:
    page = await sign_in(browser, stack, stack.token)
    async with asyncio.timeout(60):
        while await page.locator("#mesh g.edge").count() < 3:
            await page.goto(stack.console + "/mesh")  # until the changelog is read
    for node in ("sales/daily", "payments/settle", "finance/revenue", "marketing/dashboard"):
        await expect(page.locator(f'[id="recipe-{node}"]')).to_have_count(1)
    edges = await page.locator("#mesh g.edge title").evaluate_all(
        "titles => titles.map(t => t.textContent)"
    )
    assert any("sales/daily" in e and "finance/revenue" in e for e in edges), edges
    # The keyed join's edges name the join kind and its key.
    labels = await page.locator("#mesh g.edge").evaluate_all(
        "edges => edges.map(e => e.textContent)"
    )
    join = [t for t in labels if "sales/daily" in t and "finance/revenue" in t]
    assert join, labels
    assert all("all" in t and "key ${event.params.day}" in t for t in join), join
    await shot(page, "mesh")
    await page.goto(stack.console + "/kitchens")
    await expect(page.locator("#kitchen-dev-sam")).to_contain_text("dev")


async def test_a_run_started_from_the_ui_turns_succeeded_without_a_reload(browser, stack) -> None:
    page = await sign_in(browser, stack, stack.token)
    await page.click("details.start summary")
    form = page.locator("#start-run")
    await form.locator("[name=domain]").fill("sales")
    await form.locator("[name=recipe]").fill("daily")
    await form.locator("[name=variation]").fill("dev")
    await form.locator("[name=params]").fill(f'{{"day": "{DAY}"}}')
    await form.locator("button").click()
    await expect(page.locator("#steps")).to_be_visible(timeout=30_000)
    await live(page)
    first = await page.locator("#run-status").inner_text()
    await page.evaluate("window.__sameDocument = true")
    await expect(page.locator("#run-status")).to_have_text("succeeded", timeout=120_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert first.strip() != "succeeded", "the run was over before the page could watch it"
    # The run's end and its last step's come on two topics, in either order: the page
    # shows every step succeeded once both came.
    assert await page.locator("#steps tr[data-step]").count()
    await expect(page.locator("#steps tr[data-step]:not([data-status=succeeded])")).to_have_count(
        0, timeout=30_000
    )
    assert await page.locator("#dag g.node").count()
    await expect(page.locator("#dag g.node:not([data-status=succeeded])")).to_have_count(
        0, timeout=30_000
    )
    await shot(page, "run")
    await page.goto(stack.console + "/runs")
    await shot(page, "runs")


async def test_the_canary_failed_error_test_shows_red_within_a_second(browser, stack) -> None:
    page = await sign_in(browser, stack, stack.token)
    await page.goto(stack.console + "/tests?severity=error")
    await live(page)
    # The page notes when each result row appears; Kafka notes when each result was produced.
    await page.evaluate(
        """() => { window.__seen = {};
        new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes)
          if (n.dataset && n.dataset.message) window.__seen[n.dataset.message] = Date.now(); })
        .observe(document.querySelector('#results tbody'), {childList: true}); }"""
    )
    consumer = AIOKafkaConsumer(
        TEST_RESULTS.full_name(stack.kafka.topic_prefix),
        **aiokafka_options(stack.kafka),
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        await consumer.seek_to_end()
        async with stack.admin() as admin:
            r = await admin.post(
                "/v1/runs",
                json={
                    "domain": "sales",
                    "recipe": "daily",
                    "variation": "canary",
                    "params": {"day": DAY},
                },
            )
            assert r.status_code == 202, r.text
        run_id = uuid.UUID(r.json()["order_run_id"])
        produced = None
        async with asyncio.timeout(120):
            while produced is None:
                async for record in consumer:
                    m = decode_message(record.value)
                    if (
                        isinstance(m, TestResult)
                        and m.order_run_id == run_id
                        and m.test == "enough_rows"
                    ):
                        produced, message = record.timestamp, m
                        break
    finally:
        await consumer.stop()
    assert message.status.value == "failed"
    row = page.locator(f'#results tr[data-message="{message.message_id}"]')
    await expect(row).to_be_visible(timeout=5_000)
    shown = await page.evaluate(f"window.__seen['{message.message_id}']")
    assert shown - produced <= 1000, f"shown {shown - produced} ms after it was produced"
    colour = await row.evaluate("r => getComputedStyle(r).color")
    assert colour == "rgb(198, 40, 40)", colour
    await shot(page, "tests")


async def test_cancel_a_running_run_from_the_ui(browser, stack) -> None:
    async with stack.admin() as admin:
        r = await admin.post("/v1/apply", json={"files": SLOW_DOMAIN})
        assert r.status_code == 200, r.text
    page = await sign_in(browser, stack, stack.token)
    await page.click("details.start summary")
    form = page.locator("#start-run")
    await form.locator("[name=domain]").fill("ops")
    await form.locator("[name=recipe]").fill("wait")
    await form.locator("[name=variation]").fill("dev")
    await form.locator("button").click()
    await expect(page.locator("#steps tr[data-step=nap]")).to_have_attribute(
        "data-status", "running", timeout=60_000
    )
    await page.click("#cancel")
    await expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
    await expect(page.locator("#cancel")).to_have_count(0)


async def test_a_reader_sees_no_actions_and_a_forged_post_is_refused(browser, stack) -> None:
    async with stack.admin() as admin:
        r = await admin.post("/v1/tokens", json={"principal": "auditor", "scopes": {"*": ["read"]}})
        assert r.status_code == 201, r.text
        reader = r.json()["token"]
        runs: list = []
        async with asyncio.timeout(60):  # the examples' first runs, as the registry knows them
            while not runs:
                runs = (await admin.get("/v1/runs", params={"domain": "sales"})).json()
    run_id = runs[0]["order_run_id"]
    page = await sign_in(browser, stack, reader)
    await page.goto(f"{stack.console}/runs/{run_id}")
    await expect(page.locator("#steps")).to_be_visible()
    await expect(page.locator("#cancel")).to_have_count(0)
    await expect(page.locator("#again")).to_have_count(0)
    assert reader not in await page.content()
    forged = await page.request.post(f"{stack.console}/runs/{run_id}/again")
    assert forged.status == 403
    cookies = await page.context.cookies()
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies), cookies


async def test_create_a_sandbox_from_the_ui_and_see_why_it_may_not_merge(browser, stack) -> None:
    name = f"dev-{uuid.uuid4().hex[:6]}"
    page = await sign_in(browser, stack, stack.token)
    await page.goto(stack.console + "/kitchens")
    await expect(page.locator("#kitchen-dev")).to_be_visible(timeout=60_000)
    # By keyboard: open the form, fill it, submit with Enter.
    await page.locator("#create summary").focus()
    await page.keyboard.press("Enter")
    await page.locator("#create-kitchen [name=name]").fill(name)
    await page.locator("#create-kitchen [name=parent]").select_option("dev")
    await page.locator("#create-kitchen [name=ttl]").fill("1d")
    await page.locator("#create-kitchen [name=description]").fill("tried from the console")
    await page.locator("#create-kitchen [name=description]").press("Enter")
    await expect(page.locator("#action-notice")).to_have_text(f"kitchen '{name}' created")
    row = page.locator(f"#kitchen-{name}")
    await expect(row).to_contain_text("24 h", timeout=30_000)
    await expect(row.locator(".merge")).to_contain_text("allowed")

    # A recipe changed in the sandbox, not yet run there: the registry refuses the merge.
    async with stack.admin() as admin:
        r = await admin.post("/v1/apply", json={"files": sandbox_files(), "kitchen": name})
        assert r.status_code == 200, r.text
        why = (await admin.get(f"/v1/kitchens/{name}/merge")).json()["reasons"]
    assert any("since it changed sales/daily" in w for w in why), why
    await page.goto(stack.console + "/kitchens")
    await expect(row.locator(".merge")).to_contain_text("not allowed")
    await expect(row.locator(".reasons li")).to_have_text(why)
    await shot(page, "kitchens")
    await page.locator(f"#merge-{name}").press("Enter")
    alert = page.locator("#action-error")
    await expect(alert).to_have_text(f"the registry refused to merge kitchen '{name}': {why[0]}")
    async with stack.admin() as admin:
        assert (await admin.get(f"/v1/kitchens/{name}")).status_code == 200


async def test_a_backfill_shows_progress_live_and_only_operators_act(
    browser, stack, tmp_path
) -> None:
    gate = tmp_path / "gate"  # its partitions end only once the page watches them
    async with stack.admin() as admin:
        r = await admin.post("/v1/apply", json={"files": SLOW_DOMAIN})
        assert r.status_code == 200, r.text
        body = {
            "domain": "ops",
            "recipe": "gated",
            "variation": "dev",
            "params": {"gate": str(gate)},
            "range": {"param": "day", "start": "2026-11-24", "end": "2026-11-25"},
            "concurrency": 1,
        }
        r = await admin.post("/v1/backfills", json=body)
        assert r.status_code == 202, r.text
        backfill = r.json()["backfill_id"]
        r = await admin.post("/v1/tokens", json={"principal": "viewer", "scopes": {"*": ["read"]}})
        assert r.status_code == 201, r.text
        reader = r.json()["token"]
    page = await sign_in(browser, stack, stack.token)
    url = f"{stack.console}/backfills/{backfill}"
    async with asyncio.timeout(60):  # until the console has read the backfill's first update
        while (await page.goto(url)).status != 200:
            await asyncio.sleep(0.2)
    await live(page)
    first = await page.locator("#backfill-progress .done").inner_text()
    await expect(page.locator("#backfill-cancel-form")).to_have_count(1)
    await page.evaluate("window.__sameDocument = true")
    gate.touch()
    await expect(page.locator("#backfill-status")).not_to_have_text("running", timeout=120_000)
    state = await (await page.request.get(f"{url}/state")).json()
    assert state["status"] == "succeeded", state
    await expect(page.locator("#backfill-progress .done")).to_have_text("2")
    await expect(page.locator("#backfill-status")).to_have_text("succeeded", timeout=30_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert first.strip() == "0", "the backfill moved on before the page could watch it"
    rows = page.locator("#partitions tr[data-key]")
    await expect(rows).to_have_count(2)
    states = await rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert states == ["succeeded"] * 2, states
    await expect(page.locator("#partitions .partition-run a")).to_have_count(2)
    await expect(page.locator("#backfill-cancel-form")).to_be_hidden()
    await shot(page, "backfill")
    await page.keyboard.press("b")  # the nav's key for the Backfills view
    await expect(page).to_have_url(f"{stack.console}/backfills")
    await expect(page.locator(f'[id="backfill-{backfill}"] .done')).to_have_text("2")
    await shot(page, "backfills")

    page = await sign_in(browser, stack, reader)
    await page.goto(url)
    await expect(page.locator("#partitions")).to_be_visible()
    await expect(page.locator("#backfill-cancel")).to_have_count(0)
    await expect(page.locator("#backfill-retry")).to_have_count(0)
    for action in ("cancel", "retry-failed"):
        forged = await page.request.post(f"{url}/{action}")
        assert forged.status == 403, action
