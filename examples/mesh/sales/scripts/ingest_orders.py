"""Load the orders CSV into sales.raw_orders; report the row count as the `rows` output.

Run by the executor as a shell step: params arrive as SOUS_PARAM_*, the warehouse DSN as
SOUS_CONN_WAREHOUSE, and outputs are written as JSON to the file named by SOUS_OUTPUTS.
"""

import asyncio
import csv
import json
import os
from pathlib import Path

import asyncpg


async def load(dsn: str, rows: list[dict[str, str]], day: str | None) -> None:
    """Replace the day's raw orders (or all of them) with `rows`, in one transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE SCHEMA IF NOT EXISTS sales;"
                "CREATE TABLE IF NOT EXISTS sales.raw_orders (order_id text, day text,"
                " customer text, amount text, currency text)"
            )
            if day is not None:
                await conn.execute("DELETE FROM sales.raw_orders WHERE day = $1", day)
            else:
                await conn.execute("TRUNCATE sales.raw_orders")
            if rows:
                await conn.copy_records_to_table(
                    "raw_orders",
                    schema_name="sales",
                    records=[tuple(r.values()) for r in rows],
                    columns=list(rows[0].keys()),
                )
    finally:
        await conn.close()


def main() -> None:
    """Read the CSV, load it, write the outputs."""
    source = Path(os.environ.get("SOUS_PARAM_SOURCE_FILE", "../../data/orders.csv"))
    day = os.environ.get("SOUS_PARAM_DAY")
    with source.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if day is None or r["day"] == day]
    asyncio.run(load(os.environ["SOUS_CONN_WAREHOUSE"], rows, day))
    dataset = {"uri": "postgresql://warehouse/sales.raw_orders", "kind": "table", "rows": len(rows)}
    outputs = {"values": {"rows": len(rows)}, "datasets": [dataset]}
    Path(os.environ["SOUS_OUTPUTS"]).write_text(json.dumps(outputs))


if __name__ == "__main__":
    main()
