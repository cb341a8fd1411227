"""Load the orders CSV into raw_orders of the kitchen's sales schema; output the `rows` count.

Run by the executor as a shell step: params arrive as SOUS_PARAM_*, the warehouse DSN as
SOUS_CONN_WAREHOUSE, and outputs are written as JSON to the file named by SOUS_OUTPUTS.
The schema is `sales` plus the kitchen's target_schema_suffix (`sales_dev` in dev).
"""

import asyncio
import csv
import json
import os
from pathlib import Path

import asyncpg


async def load(dsn: str, schema: str, rows: list[dict[str, str]], day: str | None) -> None:
    """Replace the day's raw orders (or all of them) with `rows`, in one transaction."""
    conn = await asyncpg.connect(dsn)
    table = f'"{schema}".raw_orders'
    try:
        async with conn.transaction():
            await conn.execute(
                f'CREATE SCHEMA IF NOT EXISTS "{schema}";'
                f"CREATE TABLE IF NOT EXISTS {table} (order_id text, day text,"
                " customer text, amount text, currency text)"
            )
            if day is not None:
                await conn.execute(f"DELETE FROM {table} WHERE day = $1", day)
            else:
                await conn.execute(f"TRUNCATE {table}")
            if rows:
                await conn.copy_records_to_table(
                    "raw_orders",
                    schema_name=schema,
                    records=[tuple(r.values()) for r in rows],
                    columns=list(rows[0].keys()),
                )
    finally:
        await conn.close()


def main() -> None:
    """Read the CSV, load it, write the outputs."""
    source = Path(os.environ.get("SOUS_PARAM_SOURCE_FILE", "../../data/orders.csv"))
    day = os.environ.get("SOUS_PARAM_DAY")
    schema = "sales" + os.environ.get("SOUS_PARAM_TARGET_SCHEMA_SUFFIX", "")
    with source.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if day is None or r["day"] == day]
    asyncio.run(load(os.environ["SOUS_CONN_WAREHOUSE"], schema, rows, day))
    uri = f"postgresql://warehouse/{schema}.raw_orders"
    dataset = {"uri": uri, "kind": "table", "rows": len(rows)}
    outputs = {"values": {"rows": len(rows)}, "datasets": [dataset]}
    Path(os.environ["SOUS_OUTPUTS"]).write_text(json.dumps(outputs))


if __name__ == "__main__":
    main()
