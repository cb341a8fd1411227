"""The http runner: one request, retried on 5xx and connection errors, checked against statuses."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from sous_contracts.common import Outputs
from sous_contracts.specs.steps import HttpRun
from sous_contracts.steps import StepError
from sous_executor.adapters.context import StepContext, parse_spec
from sous_executor.domain.outcome import SpecError, StepFailure

_SECRET_REF = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_.-]*)\}")
_SNIPPET = 500


def _substitute(text: str, context: StepContext) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in context.secrets:
            raise SpecError(f"header refers to secret {name!r}, which the step may not read")
        return context.secrets[name]

    return _SECRET_REF.sub(value, text)


async def run_http(context: StepContext) -> Outputs:
    """Send the request; outputs `status` and the JSON `response` (or a text snippet)."""
    spec = parse_spec(HttpRun, context)
    headers = {k: _substitute(v, context) for k, v in spec.headers.items()}
    url = _substitute(spec.url, context)
    tries = max(1, context.settings.http_attempts)
    delay = context.settings.http_backoff_s
    response: httpx.Response | None = None
    async with httpx.AsyncClient(timeout=context.command.timeout_s) as client:
        for attempt in range(1, tries + 1):
            try:
                response = await client.request(
                    spec.method,
                    url,
                    headers=headers,
                    json=spec.body if spec.body is not None else None,
                )
            except httpx.TransportError as exc:
                context.tail.line(f"try {attempt}/{tries}: {type(exc).__name__}: {exc}")
                if attempt == tries:
                    raise StepFailure(
                        StepError(
                            kind="exception",
                            message=f"{spec.method} {url} failed after {tries} tries: "
                            f"{type(exc).__name__}: {exc}",
                            exception_type=type(exc).__name__,
                        )
                    ) from exc
            else:
                context.tail.line(f"try {attempt}/{tries}: HTTP {response.status_code}")
                if response.status_code < 500 or attempt == tries:
                    break
            await asyncio.sleep(delay)
            delay *= 2
    assert response is not None
    body = response.text
    if response.status_code not in spec.expect_status:
        raise StepFailure(
            StepError(
                kind="http_status",
                message=f"{spec.method} {url} returned {response.status_code} "
                f"(expected {spec.expect_status}): {body[:_SNIPPET]}",
                http_status=response.status_code,
            )
        )
    values: dict[str, Any] = {"status": response.status_code}
    try:
        values["response"] = response.json()
    except ValueError:
        if body:
            values["response"] = body[:_SNIPPET]
    return Outputs(values=values)
