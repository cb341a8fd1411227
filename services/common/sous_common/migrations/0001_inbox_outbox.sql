-- Inbox: message ids a consumer has handled, written in the same transaction as its effect.
CREATE TABLE inbox (
    consumer    text        NOT NULL,
    message_id  uuid        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX inbox_received_at ON inbox (received_at);

-- Outbox: messages to publish, written in the same transaction as the state change.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    message_id uuid        NOT NULL,
    topic      text        NOT NULL,
    key        bytea,
    payload    bytea       NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
