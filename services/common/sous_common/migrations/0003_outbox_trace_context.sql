-- The W3C trace context (traceparent, tracestate) of the message being handled when the row
-- was written; the relay's publish span continues it. NULL when tracing is off.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
