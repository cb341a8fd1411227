CREATE SCHEMA IF NOT EXISTS finance;
CREATE TABLE IF NOT EXISTS finance.revenue (
    day date PRIMARY KEY,
    ordered numeric(12, 2) NOT NULL,
    settled numeric(12, 2) NOT NULL
);
DELETE FROM finance.revenue WHERE day = '${params.day}'::date;
INSERT INTO finance.revenue (day, ordered, settled)
SELECT '${params.day}'::date,
       coalesce((SELECT sum(revenue) FROM sales.orders_daily WHERE day = '${params.day}'::date), 0),
       coalesce((SELECT sum(amount) FROM payments.settlements WHERE day = '${params.day}'::date), 0);
