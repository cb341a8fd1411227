CREATE TABLE IF NOT EXISTS sales${params.target_schema_suffix}.stg_orders (
    order_id bigint PRIMARY KEY,
    day date NOT NULL,
    customer text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    currency text NOT NULL
);
DELETE FROM sales${params.target_schema_suffix}.stg_orders WHERE day = '${params.day}'::date;
INSERT INTO sales${params.target_schema_suffix}.stg_orders
SELECT order_id::bigint, day::date, customer, amount::numeric, currency
FROM sales${params.target_schema_suffix}.raw_orders
WHERE day = '${params.day}';
