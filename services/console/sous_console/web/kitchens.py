"""The Kitchens view: kitchens and sandboxes, whether each may merge (the registry says), actions.

Create and merge go through the registry's REST API with the signed-in user's token; the
registry's refusal is shown on the page, with its status.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sous_common.trust import Principal
from sous_console.web import queries
from sous_console.web.auth import Viewer, registry, require, token
from sous_console.web.pages import render, runtime
from sous_console.web.registry import RegistryError

router = APIRouter()

Field = Annotated[str, Form(max_length=200)]


async def _merge_state(request: Request, name: str) -> tuple[bool | None, list[str]]:
    """Ask the registry whether `name` may merge: (allowed, reasons); None when unknown."""
    try:
        found = await registry(request).merge_check(token(request), name)
    except RegistryError as exc:
        return None, [f"the registry did not answer: {exc.detail}"]
    return bool(found["allowed"]), [str(r) for r in found["reasons"]]


async def _render(
    request: Request,
    who: Principal,
    *,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with runtime(request).pool.acquire() as conn:
        kitchens = await queries.entities(conn, "kitchen")
    states = await asyncio.gather(*(_merge_state(request, k["name"]) for k in kitchens))
    rows: list[dict[str, Any]] = []
    for k, (allowed, reasons) in zip(kitchens, states, strict=True):
        spec = k["spec"]
        rows.append(
            {
                "name": k["name"],
                "parent": spec.get("parent"),
                "ttl": spec.get("ttl"),
                "allowed": allowed,
                "reasons": reasons,
                "description": spec.get("description", ""),
            }
        )
    return render(
        request,
        "kitchens.html",
        who,
        status_code=status_code,
        kitchens=rows,
        may_admin=who.may("admin", None),
        error=error,
        notice=notice,
        form=form or {},
    )


@router.get("/kitchens", response_class=HTMLResponse)
async def kitchens_view(
    request: Request,
    who: Viewer,
    created: Annotated[str, Query(max_length=63)] = "",
    merged: Annotated[str, Query(max_length=63)] = "",
) -> HTMLResponse:
    """The Kitchens view: kitchens and sandboxes, parent, TTL, whether merge is allowed."""
    notice = None
    if created:
        notice = f"kitchen '{created}' created"
    elif merged:
        notice = f"kitchen '{merged}' merged into its parent"
    return await _render(request, who, notice=notice)


@router.post("/kitchens", response_model=None)
async def create_kitchen(
    request: Request,
    who: Viewer,
    name: Annotated[str, Form(max_length=63)],
    parent: Annotated[str, Form(max_length=63)],
    ttl: Field = "",
    provision: Field = "",
    description: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Create a sandbox kitchen through the registry (which needs `admin`)."""
    require(who, "admin", None)
    body: dict[str, Any] = {"name": name.strip(), "from": parent.strip()}
    optional = {"ttl": ttl, "provision": provision, "description": description}
    body |= {k: v.strip() for k, v in optional.items() if v.strip()}
    try:
        await registry(request).create_kitchen(token(request), body)
    except RegistryError as exc:
        form = {"name": name, "parent": parent, "ttl": ttl, "provision": provision}
        form["description"] = description
        why = f"the registry refused to create kitchen '{name}': {exc.detail}"
        return await _render(request, who, error=why, form=form, status_code=exc.status)
    return RedirectResponse(f"/kitchens?{urlencode({'created': body['name']})}", status_code=303)


@router.post("/kitchens/{kitchen}/merge", response_model=None)
async def merge_kitchen(
    request: Request, kitchen: Annotated[str, Path(max_length=63)], who: Viewer
) -> Response:
    """Merge a sandbox into its parent through the registry (which needs `admin`)."""
    require(who, "admin", None)
    try:
        await registry(request).merge_kitchen(token(request), kitchen)
    except RegistryError as exc:
        why = f"the registry refused to merge kitchen '{kitchen}': {exc.detail}"
        return await _render(request, who, error=why, status_code=exc.status)
    return RedirectResponse(f"/kitchens?{urlencode({'merged': kitchen})}", status_code=303)
