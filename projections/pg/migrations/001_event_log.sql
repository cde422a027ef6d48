-- The full event log as a table, and where each projection stopped reading it.
-- Every object is created unqualified: migrate.ts sets search_path to the target schema, so one
-- set of files builds the live schema, a test's throwaway schema or a rebuild's fresh one.

CREATE TABLE events (
  topic text NOT NULL,
  partition integer NOT NULL,
  "offset" bigint NOT NULL,
  event_id uuid NOT NULL,
  type text NOT NULL,
  occurred_at timestamptz NOT NULL,
  -- The Kafka record timestamp: when the event reached the log (occurred_at is the producer's clock).
  logged_at timestamptz NOT NULL,
  tenant_id text NOT NULL,
  correlation_id text NOT NULL,
  causation_id text,
  actor_id text NOT NULL,
  actor_tier text NOT NULL,
  aggregate_type text NOT NULL,
  aggregate_id text NOT NULL,
  aggregate_version integer NOT NULL,
  -- The event's fields without the envelope (which is spread over the columns above).
  payload jsonb NOT NULL,
  PRIMARY KEY (topic, partition, "offset"),
  -- A message written twice at two offsets (a producer retry outside a transaction) counts once.
  CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE INDEX events_type_occurred_idx ON events (type, occurred_at);
CREATE INDEX events_correlation_idx ON events (correlation_id, occurred_at);
CREATE INDEX events_aggregate_idx ON events (aggregate_type, aggregate_id, aggregate_version);
CREATE INDEX events_tenant_occurred_idx ON events (tenant_id, occurred_at);
CREATE INDEX events_causation_idx ON events (causation_id) WHERE causation_id IS NOT NULL;

CREATE TABLE checkpoints (
  projection text NOT NULL,
  topic text NOT NULL,
  partition integer NOT NULL,
  -- The next offset to read: everything before it is reflected in this schema.
  next_offset bigint NOT NULL CHECK (next_offset >= 0),
  PRIMARY KEY (projection, topic, partition)
);
