"""The views (Mesh, Runs, Run, Tests), sign-in, run actions and the live stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from sous_common.trust import Principal
from sous_console.web import graph, queries
from sous_console.web.auth import COOKIE, Viewer, domain_filter, registry, require, token
from sous_console.web.live import Filter, Hub
from sous_console.web.pages import render, runtime

router = APIRouter()
Opt = Annotated[str | None, Query(max_length=100)]


def _empty(value: str | None) -> str | None:
    return value or None


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: Opt = None) -> HTMLResponse:
    """Show the sign-in form."""
    return render(request, "sign_in.html", None, next=next or "/mesh", error=None)


@router.post("/sign-in", response_model=None)
async def sign_in(
    request: Request,
    token_text: Annotated[str, Form(alias="token", max_length=500)],
    next: Annotated[str, Form(max_length=200)] = "/mesh",
) -> Response:
    """Check the token with the registry; keep it in an HttpOnly, SameSite cookie."""
    who = await registry(request).principal(token_text.strip())
    if who is None:
        return render(
            request,
            "sign_in.html",
            None,
            status_code=401,
            next=next,
            error="unknown or revoked token",
        )
    target = next if next.startswith("/") and not next.startswith("//") else "/mesh"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token_text.strip(),
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookie,
        max_age=12 * 3600,
    )
    return response


@router.post("/sign-out")
async def sign_out() -> RedirectResponse:
    """Forget the token."""
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
async def home() -> RedirectResponse:
    """The mesh is the console's front page."""
    return RedirectResponse("/mesh", status_code=303)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer once the app is serving."""
    return {"status": "ok"}


@router.get("/runs", response_class=HTMLResponse)
async def runs_view(
    request: Request,
    who: Viewer,
    domain: Opt = None,
    recipe: Opt = None,
    variation: Opt = None,
    kitchen: Opt = None,
    status: Opt = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The Runs view: a filterable, paginated table; new runs appear live."""
    flt = queries.RunFilter(
        _empty(domain), _empty(recipe), _empty(variation), _empty(kitchen), _empty(status), page
    )
    async with runtime(request).pool.acquire() as conn:
        rows, total = await queries.runs(conn, flt, domain_filter(who))
    pages = max(1, -(-total // queries.PAGE))
    fields = ("domain", "recipe", "variation", "kitchen", "status")
    q = urlencode({k: getattr(flt, k) for k in fields if getattr(flt, k)})
    return render(request, "runs.html", who, runs=rows, flt=flt, total=total, pages=pages, q=q)


@router.post("/runs", response_model=None)
async def start_run(
    request: Request,
    who: Viewer,
    domain: Annotated[str, Form(max_length=63)],
    recipe: Annotated[str, Form(max_length=63)],
    variation: Annotated[str, Form(max_length=63)] = "",
    kitchen: Annotated[str, Form(max_length=63)] = "",
    params: Annotated[str, Form(max_length=10_000)] = "{}",
) -> Response:
    """Start a run through the registry's REST API, with the caller's own token."""
    require(who, "run", domain)
    try:
        parsed = json.loads(params or "{}")
    except ValueError as exc:
        raise HTTPException(422, f"params are not JSON: {exc}") from exc
    body = {"domain": domain, "recipe": recipe, "params": parsed}
    body |= {k: v for k, v in (("variation", variation), ("kitchen", kitchen)) if v}
    run_id = await registry(request).start_run(token(request), body)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_view(request: Request, run_id: uuid.UUID, who: Viewer) -> HTMLResponse:
    """The Run view: DAG, step attempts, tests, log tails, what started it and what followed."""
    async with runtime(request).pool.acquire() as conn:
        found = await queries.run(conn, run_id)
        if found is None:
            # A run just started from the UI may not have reached the read model yet.
            return render(request, "run_pending.html", who, run_id=run_id)
        require(who, "read", found["domain"])
        steps = await queries.steps(conn, run_id)
        tests = await queries.tests_of_run(conn, run_id)
        related = _readable_links(who, await queries.related_runs(conn, found))
        spec = None
        if found["domain"] and found["recipe"]:
            spec = await queries.recipe_spec(
                conn, found["domain"], found["recipe"], found["kitchen"]
            )
    svg = await graph.render(graph.recipe_dot(spec)) if spec else ""
    last: dict[str, dict[str, Any]] = {}
    for s in steps:
        last[s["step"]] = s
    return render(
        request,
        "run.html",
        who,
        run=found,
        steps=steps,
        last=last,
        tests=tests,
        related=related,
        svg=svg,
        may_run=found["domain"] is not None
        and found["status"] != "join-expired"  # no run to cancel or repeat
        and who.may("run", found["domain"]),
    )


def _readable_links(who: Principal, related: dict[str, Any]) -> dict[str, Any]:
    """Leave out linked runs of domains the viewer may not read, and count them."""
    hidden = 0
    for key in ("upstreams", "downstream"):
        if key in related:
            shown = [r for r in related[key] if not r["domain"] or who.may("read", r["domain"])]
            hidden += len(related[key]) - len(shown)
            related[key] = shown
    return {**related, "hidden": hidden}


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, run_id: uuid.UUID, who: Viewer) -> RedirectResponse:
    """Cancel a run through the registry's REST API."""
    async with runtime(request).pool.acquire() as conn:
        found = await queries.run(conn, run_id)
    if found is None:
        raise HTTPException(404, f"unknown run {run_id}")
    require(who, "run", found["domain"])
    await registry(request).cancel_run(token(request), run_id, f"cancelled by {who.name}")
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/again")
async def run_again(request: Request, run_id: uuid.UUID, who: Viewer) -> RedirectResponse:
    """Start the same recipe variation with the same params."""
    async with runtime(request).pool.acquire() as conn:
        found = await queries.run(conn, run_id)
    if found is None or not found["domain"] or not found["recipe"]:
        raise HTTPException(404, f"unknown run {run_id}")
    require(who, "run", found["domain"])
    body = {k: found[k] for k in ("domain", "recipe", "variation", "kitchen") if found[k]}
    body["params"] = found["params"]
    new = await registry(request).start_run(token(request), body)
    return RedirectResponse(f"/runs/{new}", status_code=303)


@router.get("/runs/{run_id}/state")
async def run_state(request: Request, run_id: uuid.UUID, who: Viewer) -> dict[str, Any]:
    """The run's status and steps as JSON (what the Run view refreshes from on reconnect)."""
    async with runtime(request).pool.acquire() as conn:
        found = await queries.run(conn, run_id)
        if found is None:
            raise HTTPException(404, f"unknown run {run_id}")
        require(who, "read", found["domain"])
        steps = await queries.steps(conn, run_id)
    return {
        "status": found["status"],
        "tests": {k: found[f"tests_{k}"] for k in ("pass", "fail", "warn")},
        "steps": [
            {"step": s["step"], "status": s["status"], "attempt": s["attempt"]} for s in steps
        ],
    }


def _set(values: list[str] | None) -> frozenset[str]:
    return frozenset(v for v in values or [] if v)


@router.get("/events")
async def events(
    request: Request,
    who: Viewer,
    domain: Annotated[list[str] | None, Query()] = None,
    kitchen: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    run: uuid.UUID | None = None,
) -> EventSourceResponse:
    """Server-Sent Events of read-model changes, filtered by domain, kitchen and severity."""
    hub: Hub = request.app.state.hub
    flt = Filter(
        who, _set(domain), _set(kitchen), _set(severity), str(run) if run else None, _set(kind)
    )
    sub = hub.subscribe(flt)

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"event": "ready", "data": "{}"}
            while True:
                change = await sub.queue.get()
                if change is None:
                    return
                yield {"event": str(change.get("kind", "change")), "data": json.dumps(change)}
        except asyncio.CancelledError:
            raise
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


@router.get("/tests", response_class=HTMLResponse)
async def results_view(
    request: Request,
    who: Viewer,
    domain: Opt = None,
    kitchen: Opt = None,
    severity: Opt = None,
    status: Opt = None,
) -> HTMLResponse:
    """The Tests view: the newest results, then every new one live."""
    flt = queries.TestFilter(_empty(domain), _empty(kitchen), _empty(severity), _empty(status))
    async with runtime(request).pool.acquire() as conn:
        rows = await queries.recent_results(conn, flt, domain_filter(who), 100)
    live = urlencode(
        [("kind", "test")]
        + [(k, getattr(flt, k)) for k in ("domain", "kitchen", "severity") if getattr(flt, k)]
    )
    return render(request, "tests.html", who, results=rows, flt=flt, live=live)


@router.get("/tests/history", response_class=HTMLResponse)
async def history_view(
    request: Request,
    who: Viewer,
    domain: Annotated[str, Query(max_length=63)],
    recipe: Annotated[str, Query(max_length=63)],
    step: Annotated[str, Query(max_length=63)],
    test: Annotated[str, Query(max_length=63)],
    kitchen: Annotated[str, Query(max_length=63)],
) -> HTMLResponse:
    """One test's recent results in a kitchen, as a small chart and a table."""
    require(who, "read", domain)
    async with runtime(request).pool.acquire() as conn:
        rows = await queries.result_history(
            conn, domain=domain, recipe=recipe, step=step, test=test, kitchen=kitchen
        )
    series = f"{domain}/{recipe} · {step} · {test} in {kitchen}"
    return render(request, "test_history.html", who, rows=rows, series=series, chart=chart(rows))


def chart(rows: list[dict[str, Any]], width: int = 320, height: int = 60) -> dict[str, Any]:
    """Return the points of a small chart of numeric values (status-coloured dots)."""
    values = [
        (float(r["value"]), r["status"])
        for r in rows
        if isinstance(r["value"], int | float) and not isinstance(r["value"], bool)
    ]
    if not values:
        return {"points": [], "width": width, "height": height}
    low, high = min(v for v, _ in values), max(v for v, _ in values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = [
        {
            "x": round(i * step, 1),
            "y": round(height - 5 - (v - low) / span * (height - 10), 1),
            "status": s,
            "value": v,
        }
        for i, (v, s) in enumerate(values)
    ]
    return {"points": points, "width": width, "height": height, "low": low, "high": high}


@router.get("/mesh", response_class=HTMLResponse)
async def mesh_view(request: Request, who: Viewer, kitchen: Opt = None) -> HTMLResponse:
    """The Mesh view: domains, recipes, trigger edges, each recipe's last run; live."""
    async with runtime(request).pool.acquire() as conn:
        recipes = await queries.entities(conn, "recipe")
        kitchens = sorted({k["name"] for k in await queries.entities(conn, "kitchen")})
        last = await queries.last_runs(conn, _empty(kitchen))
    # A kitchen's own version of a recipe replaces the base one there.
    chosen: dict[str, dict[str, Any]] = {}
    for r in recipes:
        if r["kitchen"] in ("", kitchen or ""):
            key = r["entity_id"]
            if key not in chosen or r["kitchen"]:
                chosen[key] = r
    readable = [r for r in chosen.values() if who.may("read", r["domain"])]
    svg = await graph.render(graph.mesh_dot(readable, last)) if readable else ""
    live = urlencode([("kind", "run")] + ([("kitchen", kitchen)] if kitchen else []))
    return render(
        request,
        "mesh.html",
        who,
        svg=svg,
        kitchens=kitchens,
        kitchen=kitchen,
        live=live,
        recipes=readable,
    )
