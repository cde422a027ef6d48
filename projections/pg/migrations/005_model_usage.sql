-- Model usage: one row per recorded use of a language model, and its totals per model, goal and
-- tenant. A row comes from an event carrying a ModelUsage: a task attempt's TaskCompleted or
-- TaskFailed (kind 'task'), or a planner's PlanProposed (kind 'plan'). Like every table here it is
-- derived from events only, written in the batch's transaction and keyed by the event's position,
-- so a redelivered batch adds nothing and a rebuild reproduces it exactly.

CREATE TABLE model_calls (
  topic text NOT NULL,
  partition integer NOT NULL,
  "offset" bigint NOT NULL,
  event_id uuid NOT NULL,
  -- TaskCompleted, TaskFailed or PlanProposed.
  event_type text NOT NULL,
  occurred_at timestamptz NOT NULL,
  tenant_id text NOT NULL,
  goal_id text NOT NULL,
  -- Null for a plan.
  task_id text,
  kind text NOT NULL CHECK (kind IN ('plan', 'task')),
  -- The task attempt, or the planning attempt.
  attempt integer NOT NULL,
  -- A project's phase planned (plans only).
  phase text,
  -- The worker of a task attempt; null for a plan (the planner runs beside the president).
  agent_id text,
  -- COMPLETED or FAILED for a task attempt; ACCEPTED or REFUSED for a plan.
  outcome text NOT NULL,
  -- Backend and model that answered, e.g. 'openai:gpt-4o-mini'.
  model text NOT NULL,
  tokens_in bigint NOT NULL,
  tokens_out bigint NOT NULL,
  -- Model calls made (retries of one call count once).
  calls integer NOT NULL,
  latency_ms bigint NOT NULL,
  -- The completed attempt's cost (TaskCompleted.cost); null where the log records none (a failed
  -- attempt, a plan).
  cost numeric(18, 4),
  prompt_digest text,
  answer_digest text,
  PRIMARY KEY (topic, partition, "offset"),
  -- An event written twice at two offsets counts once, as in events.
  CONSTRAINT model_calls_event_id_key UNIQUE (event_id)
);
CREATE INDEX model_calls_tenant_occurred_idx ON model_calls (tenant_id, occurred_at);
CREATE INDEX model_calls_goal_idx ON model_calls (goal_id, task_id);
CREATE INDEX model_calls_model_idx ON model_calls (model, occurred_at);

-- Totals per tenant and model (sum over tenant_id for the platform's totals per model).
CREATE VIEW model_usage_by_model AS
SELECT tenant_id,
       model,
       count(*)::integer AS records,
       sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'plan'), 0)::bigint AS plan_calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'task'), 0)::bigint AS task_calls,
       sum(tokens_in)::bigint AS tokens_in,
       sum(tokens_out)::bigint AS tokens_out,
       sum(tokens_in + tokens_out)::bigint AS tokens_total,
       sum(latency_ms)::bigint AS latency_ms,
       round(sum(latency_ms)::numeric / nullif(sum(calls), 0), 1) AS avg_latency_ms,
       coalesce(sum(cost), 0)::numeric(18, 4) AS cost,
       count(DISTINCT goal_id)::integer AS goals,
       min(occurred_at) AS first_at,
       max(occurred_at) AS last_at
FROM model_calls
GROUP BY tenant_id, model;

-- Totals per goal, every model it used together (models lists them).
CREATE VIEW model_usage_by_goal AS
SELECT tenant_id,
       goal_id,
       array_agg(DISTINCT model ORDER BY model) AS models,
       count(*)::integer AS records,
       sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'plan'), 0)::bigint AS plan_calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'task'), 0)::bigint AS task_calls,
       sum(tokens_in)::bigint AS tokens_in,
       sum(tokens_out)::bigint AS tokens_out,
       sum(tokens_in + tokens_out)::bigint AS tokens_total,
       sum(latency_ms)::bigint AS latency_ms,
       round(sum(latency_ms)::numeric / nullif(sum(calls), 0), 1) AS avg_latency_ms,
       coalesce(sum(cost), 0)::numeric(18, 4) AS cost,
       count(DISTINCT task_id)::integer AS tasks,
       min(occurred_at) AS first_at,
       max(occurred_at) AS last_at
FROM model_calls
GROUP BY tenant_id, goal_id;

-- Totals per tenant, every model together.
CREATE VIEW model_usage_by_tenant AS
SELECT tenant_id,
       array_agg(DISTINCT model ORDER BY model) AS models,
       count(*)::integer AS records,
       sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'plan'), 0)::bigint AS plan_calls,
       coalesce(sum(calls) FILTER (WHERE kind = 'task'), 0)::bigint AS task_calls,
       sum(tokens_in)::bigint AS tokens_in,
       sum(tokens_out)::bigint AS tokens_out,
       sum(tokens_in + tokens_out)::bigint AS tokens_total,
       sum(latency_ms)::bigint AS latency_ms,
       round(sum(latency_ms)::numeric / nullif(sum(calls), 0), 1) AS avg_latency_ms,
       coalesce(sum(cost), 0)::numeric(18, 4) AS cost,
       count(DISTINCT goal_id)::integer AS goals,
       min(occurred_at) AS first_at,
       max(occurred_at) AS last_at
FROM model_calls
GROUP BY tenant_id;

-- Filled from the event log already projected, exactly as the projection fills it from now on, so
-- the schema equals a rebuild from offset zero (`npm run rebuild`) right after this migration.
INSERT INTO model_calls (topic, partition, "offset", event_id, event_type, occurred_at, tenant_id, goal_id, task_id,
  kind, attempt, phase, agent_id, outcome, model, tokens_in, tokens_out, calls, latency_ms, cost, prompt_digest,
  answer_digest)
SELECT e.topic,
       e.partition,
       e."offset",
       e.event_id,
       e.type,
       e.occurred_at,
       e.tenant_id,
       e.payload ->> 'goalId',
       CASE WHEN e.type = 'PlanProposed' THEN NULL ELSE e.payload ->> 'taskId' END,
       CASE WHEN e.type = 'PlanProposed' THEN 'plan' ELSE 'task' END,
       (e.payload ->> 'attempt')::integer,
       CASE WHEN e.type = 'PlanProposed' THEN e.payload ->> 'phase' END,
       CASE WHEN e.type = 'PlanProposed' THEN NULL ELSE e.payload ->> 'agentId' END,
       CASE e.type
         WHEN 'TaskCompleted' THEN 'COMPLETED'
         WHEN 'TaskFailed' THEN 'FAILED'
         WHEN 'PlanProposed' THEN CASE WHEN (e.payload ->> 'accepted')::boolean THEN 'ACCEPTED' ELSE 'REFUSED' END
       END,
       e.payload -> 'usage' ->> 'model',
       (e.payload -> 'usage' ->> 'tokensIn')::bigint,
       (e.payload -> 'usage' ->> 'tokensOut')::bigint,
       (e.payload -> 'usage' ->> 'calls')::integer,
       (e.payload -> 'usage' ->> 'latencyMs')::bigint,
       CASE WHEN e.type = 'TaskCompleted' THEN (e.payload ->> 'cost')::numeric(18, 4) END,
       e.payload -> 'usage' ->> 'promptDigest',
       e.payload -> 'usage' ->> 'answerDigest'
FROM events e
WHERE e.type IN ('TaskCompleted', 'TaskFailed', 'PlanProposed') AND jsonb_typeof(e.payload -> 'usage') = 'object';

-- The planner of each goal's last decomposition (GoalDecomposed.planner: explicit, templates/v1,
-- model/v1, ...), filled from the event log like model_calls.
ALTER TABLE goals ADD COLUMN planner text;
UPDATE goals g
SET planner = last.planner
FROM (
  SELECT DISTINCT ON (e.payload ->> 'goalId') e.payload ->> 'goalId' AS goal_id, e.payload ->> 'planner' AS planner
  FROM events e
  WHERE e.type = 'GoalDecomposed'
  ORDER BY e.payload ->> 'goalId', e.topic, e.partition, e."offset" DESC
) last
WHERE last.goal_id = g.goal_id;
