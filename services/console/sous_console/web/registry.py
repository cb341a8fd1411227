"""The registry's REST API as the console uses it: who a token is, runs and kitchens."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from sous_common.trust import Principal


class RegistryError(Exception):
    """The registry refused a request or could not be reached; `status` is its HTTP status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Registry:
    """A client of the registry, holding no token of its own: each call uses the caller's."""

    def __init__(
        self,
        base_url: str,
        *,
        cache_s: float = 10.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._cache_s = cache_s
        self._known: dict[str, tuple[float, Principal]] = {}

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def principal(self, token: str) -> Principal | None:
        """Return the token's principal with its scopes, or None when the registry refuses it.

        Answers are kept a few seconds (by the token's hash, never the token) so pages and
        the live stream do not ask the registry on every request.
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        if (held := self._known.get(key)) is not None and held[0] > now:
            return held[1]
        response = await self._call("GET", "/v1/whoami", token)
        if response.status_code == 401:
            self._known.pop(key, None)
            return None
        self._check(response)
        body = response.json()
        found = Principal(body["principal"], body["scopes"])
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (now + self._cache_s, found)
        return found

    async def start_run(self, token: str, body: dict[str, Any]) -> uuid.UUID:
        """Start an order run (POST /v1/runs); return its id."""
        response = await self._call("POST", "/v1/runs", token, json=body)
        self._check(response)
        return uuid.UUID(response.json()["order_run_id"])

    async def cancel_run(self, token: str, run_id: uuid.UUID, reason: str) -> None:
        """Cancel an order run (POST /v1/runs/{id}/cancel)."""
        response = await self._call(
            "POST", f"/v1/runs/{run_id}/cancel", token, json={"reason": reason}
        )
        self._check(response)

    async def cancel_backfill(self, token: str, backfill_id: uuid.UUID, reason: str) -> None:
        """Cancel a backfill (POST /v1/backfills/{id}/cancel)."""
        response = await self._call(
            "POST", f"/v1/backfills/{backfill_id}/cancel", token, json={"reason": reason}
        )
        self._check(response)

    async def retry_failed(self, token: str, backfill_id: uuid.UUID) -> None:
        """Run a backfill's failed partitions again (POST /v1/backfills/{id}/retry-failed)."""
        response = await self._call("POST", f"/v1/backfills/{backfill_id}/retry-failed", token)
        self._check(response)

    async def create_kitchen(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a sandbox kitchen (POST /v1/kitchens); return the registry's entity."""
        response = await self._call("POST", "/v1/kitchens", token, json=body)
        self._check(response)
        found: dict[str, Any] = response.json()
        return found

    async def merge_kitchen(self, token: str, kitchen: str) -> dict[str, Any]:
        """Merge a sandbox into its parent (POST /v1/kitchens/{kitchen}/merge)."""
        response = await self._call("POST", f"/v1/kitchens/{quote(kitchen, safe='')}/merge", token)
        self._check(response)
        found: dict[str, Any] = response.json()
        return found

    async def merge_check(self, token: str, kitchen: str) -> dict[str, Any]:
        """Ask whether a kitchen may merge now, and why not (GET /v1/kitchens/{kitchen}/merge)."""
        response = await self._call("GET", f"/v1/kitchens/{quote(kitchen, safe='')}/merge", token)
        self._check(response)
        found: dict[str, Any] = response.json()
        return found

    async def _call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise RegistryError(503, f"the registry cannot be reached: {exc}") from exc

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(response.status_code, response.text) from None
        raise RegistryError(response.status_code, _reason(body, response.text))


def _reason(body: Any, text: str) -> str:
    """Return the registry's refusal as one readable sentence.

    Refusals carry `detail` (a sentence) and, for specs, `errors` (each a sentence);
    request validation gives a list of problems, each with where and what.
    """
    if not isinstance(body, dict):
        return text
    if isinstance(errors := body.get("errors"), list) and errors:
        return "; ".join(str(e) for e in errors)
    detail = body.get("detail", text)
    if isinstance(detail, list):
        parts = []
        for d in detail:
            if isinstance(d, dict):
                where = ".".join(str(x) for x in d.get("loc", []) if x != "body")
                parts.append(f"{where}: {d.get('msg', '')}" if where else str(d.get("msg", "")))
            else:
                parts.append(str(d))
        return "; ".join(parts)
    return str(detail)
