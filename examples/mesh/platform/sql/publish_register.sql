CREATE TABLE IF NOT EXISTS ${params.published_schema}.catalog (
    table_name text PRIMARY KEY,
    published_at timestamptz NOT NULL
);
INSERT INTO ${params.published_schema}.catalog (table_name, published_at)
VALUES ('${params.name}', now())
ON CONFLICT (table_name) DO UPDATE SET published_at = excluded.published_at;
