"""Creating and merging kitchens from the Kitchens view, through the real registry."""

from __future__ import annotations

import pytest

from tests.console.integration.test_read_model import until
from tests.console.integration.test_web import signed_in
from tests.domain_registry.integration.test_kitchen_apply import apply, sandbox_files
from tests.domain_registry.mesh import mesh_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

KNOWN = "SELECT true FROM entities WHERE kind = 'kitchen' AND name = $1 AND NOT deleted"


async def known_kitchens(console, *names: str) -> None:
    """Wait until the console's read model holds the kitchens (it reads the changelog)."""
    for name in names:
        await until(console.pool, KNOWN, name)


async def test_an_admin_creates_a_sandbox_and_sees_the_registrys_merge_refusal(console) -> None:
    assert (await apply(console.registry, mesh_files())).status_code == 200
    await known_kitchens(console, "dev")
    async with signed_in(console, {"*": ["admin"]}) as (client, token):
        page = await client.get("/kitchens")
        assert 'id="create-kitchen"' in page.text
        created = await client.post(
            "/kitchens", data={"name": "dev-zoe", "parent": "dev", "ttl": "2d", "provision": ""}
        )
        assert created.status_code == 303, created.text
        assert created.headers["location"] == "/kitchens?created=dev-zoe"
        kitchen = (await console.registry.client.get("/v1/kitchens/dev-zoe")).json()
        assert (kitchen["spec"]["parent"], kitchen["spec"]["ttl"]) == ("dev", 172800.0)

        # A recipe changed in the sandbox and not run there since: the registry refuses.
        assert (await apply(console.registry, sandbox_files(), kitchen="dev-zoe")).is_success
        await known_kitchens(console, "dev-zoe")
        check = (await console.registry.client.get("/v1/kitchens/dev-zoe/merge")).json()
        (reason,) = check["reasons"]
        assert "since it changed sales/daily" in reason
        page = await client.get("/kitchens")
        row = page.text.split('id="kitchen-dev-zoe"')[1].split("</tr>")[0]
        assert "not allowed" in row
        assert reason.replace("'", "&#39;") in row
        assert 'id="merge-dev-zoe"' in row
        assert token not in page.text

        refused = await client.post("/kitchens/dev-zoe/merge")
        assert refused.status_code == 409
        assert 'role="alert"' in refused.text
        said = refused.text.split('id="action-error">')[1].split("</p>")[0]
        assert said == (
            "the registry refused to merge kitchen &#39;dev-zoe&#39;: "
            + reason.replace("'", "&#39;")
        )
        assert "Traceback" not in refused.text
        again = await client.post("/kitchens", data={"name": "dev-zoe", "parent": "dev"})
        assert again.status_code == 422
        assert "kitchens/dev-zoe.yaml: kitchen: kitchen exists already" in again.text
        assert 'value="dev-zoe"' in again.text  # the form keeps what was typed

        # An empty sandbox may merge: the registry merges it and it is gone.
        assert (
            await client.post("/kitchens", data={"name": "dev-yan", "parent": "dev"})
        ).status_code == 303
        await known_kitchens(console, "dev-yan")
        merged = await client.post("/kitchens/dev-yan/merge")
        assert merged.status_code == 303, merged.text
        assert merged.headers["location"] == "/kitchens?merged=dev-yan"
        assert (await console.registry.client.get("/v1/kitchens/dev-yan")).status_code == 404


async def test_without_admin_no_kitchen_actions_and_a_forged_post_is_refused(console) -> None:
    assert (await apply(console.registry, mesh_files())).status_code == 200
    r = await console.registry.client.post("/v1/kitchens", json={"name": "dev-kim", "from": "dev"})
    assert r.status_code == 201, r.text
    await known_kitchens(console, "dev", "dev-kim")
    async with signed_in(console, {"*": ["read", "run"]}) as (client, _):
        page = await client.get("/kitchens")
        assert page.status_code == 200
        assert 'id="kitchen-dev-kim"' in page.text
        assert 'id="create-kitchen"' not in page.text
        assert 'id="merge-dev-kim"' not in page.text
        assert 'status-succeeded">allowed' in page.text.split('id="kitchen-dev-kim"')[1]
        forged = await client.post("/kitchens", data={"name": "dev-eve", "parent": "dev"})
        assert forged.status_code == 403
        assert "lacks scope 'admin'" in forged.json()["detail"]
        forged = await client.post("/kitchens/dev-kim/merge")
        assert forged.status_code == 403
    assert (await console.registry.client.get("/v1/kitchens/dev-eve")).status_code == 404
    assert (await console.registry.client.get("/v1/kitchens/dev-kim")).status_code == 200


async def test_a_kitchen_form_posted_from_another_site_is_refused(console) -> None:
    assert (await apply(console.registry, mesh_files())).status_code == 200
    await known_kitchens(console, "dev")
    async with signed_in(console, {"*": ["admin"]}) as (client, _):
        for headers in ({"Origin": "http://elsewhere.example"}, {"Sec-Fetch-Site": "cross-site"}):
            forged = await client.post(
                "/kitchens", data={"name": "dev-eve", "parent": "dev"}, headers=headers
            )
            assert forged.status_code == 403, forged.text
            assert "refused" in forged.json()["detail"]
        same = await client.post(
            "/kitchens",
            data={"name": "dev-ada", "parent": "dev"},
            headers={"Origin": console.url, "Sec-Fetch-Site": "same-origin"},
        )
        assert same.status_code == 303, same.text
    assert (await console.registry.client.get("/v1/kitchens/dev-eve")).status_code == 404
    assert (await console.registry.client.get("/v1/kitchens/dev-ada")).status_code == 200
