"""Read a service's ops endpoint as Prometheus would: scrape `/metrics` and parse it."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    """Return every sample of `url/metrics`, by name and labels."""
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{url}/metrics")
    r.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def has(samples: Samples, name: str, **labels: str) -> bool:
    """True when a sample named `name` with these labels exists."""
    wanted = set(labels.items())
    return any(n == name and wanted <= ls for n, ls in samples)


async def status(url: str, path: str) -> int:
    """The status code of one probe path."""
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{url}{path}")).status_code
