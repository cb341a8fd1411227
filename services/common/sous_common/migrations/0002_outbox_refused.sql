-- Outbox rows the broker can never take (too large, invalid topic): kept with the reason
-- instead of blocking every row behind them; a dead letter announces each one.
CREATE TABLE outbox_refused (
    id         bigint      PRIMARY KEY,
    message_id uuid        NOT NULL,
    topic      text        NOT NULL,
    key        bytea,
    payload    bytea       NOT NULL,
    headers    jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    reason     text        NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now()
);
