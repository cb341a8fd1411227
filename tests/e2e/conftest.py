"""Fixtures of the end-to-end tests: a warehouse database of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sous_up import warehouse_database


@pytest.fixture
async def warehouse(servers) -> AsyncIterator[str]:
    """A database of its own for the examples' data; its DSN."""
    async with warehouse_database(servers.database_url) as dsn:
        yield dsn
