CREATE SCHEMA IF NOT EXISTS payments${params.target_schema_suffix};
CREATE TABLE IF NOT EXISTS payments${params.target_schema_suffix}.settlements (
    day date NOT NULL,
    batch integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    PRIMARY KEY (day, batch)
);
DELETE FROM payments${params.target_schema_suffix}.settlements WHERE day = '${params.day}'::date;
INSERT INTO payments${params.target_schema_suffix}.settlements (day, batch, amount)
SELECT '${params.day}'::date, b, round((100 + b * 37.5)::numeric, 2)
FROM generate_series(1, ${params.batches}) AS b;
