CREATE SCHEMA IF NOT EXISTS finance${params.target_schema_suffix};
CREATE TABLE IF NOT EXISTS finance${params.target_schema_suffix}.revenue (
    day date PRIMARY KEY,
    ordered numeric(12, 2) NOT NULL,
    settled numeric(12, 2) NOT NULL
);
DELETE FROM finance${params.target_schema_suffix}.revenue WHERE day = '${params.day}'::date;
INSERT INTO finance${params.target_schema_suffix}.revenue (day, ordered, settled)
SELECT '${params.day}'::date,
       coalesce((SELECT sum(revenue) FROM sales${params.target_schema_suffix}.orders_daily
                 WHERE day = '${params.day}'::date), 0),
       coalesce((SELECT sum(amount) FROM payments${params.target_schema_suffix}.settlements
                 WHERE day = '${params.day}'::date), 0);
