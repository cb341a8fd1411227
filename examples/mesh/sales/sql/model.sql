CREATE TABLE IF NOT EXISTS sales${params.target_schema_suffix}.orders_daily (
    day date NOT NULL,
    customer text NOT NULL,
    orders integer NOT NULL,
    revenue numeric(12, 2) NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, customer)
);
DELETE FROM sales${params.target_schema_suffix}.orders_daily WHERE day = '${params.day}'::date;
INSERT INTO sales${params.target_schema_suffix}.orders_daily (day, customer, orders, revenue)
SELECT day, customer, count(*), sum(amount)
FROM sales${params.target_schema_suffix}.stg_orders
WHERE day = '${params.day}'::date
GROUP BY day, customer;
