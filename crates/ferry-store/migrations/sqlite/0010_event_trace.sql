-- The W3C trace context an event belongs to (`traceparent`, `tracestate`),
-- so that every attempt of its deliveries joins the producer's trace, even
-- after a restart. Events stored before this migration have none.
ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE events ADD COLUMN tracestate TEXT;
