CREATE SCHEMA IF NOT EXISTS payments;
CREATE TABLE IF NOT EXISTS payments.settlements (
    day date NOT NULL,
    batch integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    PRIMARY KEY (day, batch)
);
DELETE FROM payments.settlements WHERE day = '${params.day}'::date;
INSERT INTO payments.settlements (day, batch, amount)
SELECT '${params.day}'::date, b, round((100 + b * 37.5)::numeric, 2)
FROM generate_series(1, ${params.batches}) AS b;
