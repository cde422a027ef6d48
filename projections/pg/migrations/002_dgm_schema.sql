-- The DGM analytics schema: goals, tasks and their dependencies, agents and their performance,
-- operational system events, and goal snapshots. Every row is derived from events only (no now()),
-- so a rebuild from offset zero produces the same bytes as the live schema.

-- Lifecycle order of goal and task statuses: a status only moves to a higher rank, mirroring
-- processors/domain/state.ts, so an event read late never moves a row backwards.
CREATE FUNCTION goal_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE status
    WHEN 'SUBMITTED' THEN 0 WHEN 'VALIDATED' THEN 1 WHEN 'DECOMPOSED' THEN 2 WHEN 'RUNNING' THEN 3
    WHEN 'COMPLETED' THEN 4 WHEN 'FAILED' THEN 4 WHEN 'STOPPED' THEN 4 WHEN 'REJECTED' THEN 4
    ELSE -1 END
$$;

CREATE FUNCTION task_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE status
    WHEN 'PENDING' THEN 0 WHEN 'READY' THEN 1 WHEN 'ASSIGNED' THEN 2 WHEN 'ACCEPTED' THEN 3
    WHEN 'RUNNING' THEN 4 WHEN 'TIMED_OUT' THEN 5 WHEN 'FAILED' THEN 5
    WHEN 'COMPLETED' THEN 6 WHEN 'CANCELLED' THEN 6
    ELSE -1 END
$$;

CREATE TABLE goals (
  goal_id text PRIMARY KEY,
  tenant_id text NOT NULL,
  -- Null when only a rejection is known (a SubmitGoal refused before it was accepted).
  kind text,
  topology text,
  title text,
  description text,
  priority integer CHECK (priority BETWEEN 1 AND 10),
  constraints jsonb NOT NULL DEFAULT '{}',
  domain_hints text[] NOT NULL DEFAULT '{}',
  deadline timestamptz,
  budget numeric(18, 4),
  status text NOT NULL,
  current_phase text,
  phase_started_at timestamptz,
  submitted_at timestamptz,
  ended_at timestamptz,
  result text,
  -- Why it failed, was stopped or was rejected.
  end_reason text,
  tasks_completed integer,
  tasks_failed integer,
  total_cost numeric(18, 4),
  duration_ms bigint,
  -- Highest goal aggregate version applied.
  version integer NOT NULL DEFAULT 0
);
CREATE INDEX goals_status_idx ON goals (status);
CREATE INDEX goals_tenant_submitted_idx ON goals (tenant_id, submitted_at);
CREATE INDEX goals_priority_idx ON goals (priority DESC, submitted_at);

CREATE TABLE tasks (
  goal_id text NOT NULL,
  task_id text NOT NULL,
  tenant_id text NOT NULL,
  title text NOT NULL,
  description text,
  domain text NOT NULL,
  specialization text,
  phase text,
  priority integer NOT NULL,
  max_attempts integer NOT NULL,
  parent_task_id text,
  estimated_effort_ms bigint,
  deadline timestamptz,
  status text NOT NULL,
  attempt integer NOT NULL DEFAULT 1,
  -- Who holds the current attempt at each tier below the top (null once released by a retry).
  governor_id text,
  mayor_id text,
  worker_id text,
  created_at timestamptz NOT NULL,
  assigned_at timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  failed_at timestamptz,
  cancelled_at timestamptz,
  -- Execution time of the completing attempt.
  duration_ms bigint,
  -- Attempts that failed or timed out.
  failures integer NOT NULL DEFAULT 0,
  cost numeric(18, 4) NOT NULL DEFAULT 0,
  result text,
  last_failure text,
  PRIMARY KEY (goal_id, task_id)
);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_worker_idx ON tasks (worker_id) WHERE worker_id IS NOT NULL;
CREATE INDEX tasks_mayor_idx ON tasks (mayor_id) WHERE mayor_id IS NOT NULL;
CREATE INDEX tasks_governor_idx ON tasks (governor_id) WHERE governor_id IS NOT NULL;
CREATE INDEX tasks_completed_at_idx ON tasks (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_domain_idx ON tasks (domain, specialization);

CREATE TABLE task_dependencies (
  goal_id text NOT NULL,
  task_id text NOT NULL,
  depends_on text NOT NULL,
  PRIMARY KEY (goal_id, task_id, depends_on)
);
-- "What waits for this task": the reverse lookup.
CREATE INDEX task_dependencies_reverse_idx ON task_dependencies (goal_id, depends_on);

CREATE TABLE agents (
  agent_id text PRIMARY KEY,
  name text NOT NULL,
  tier text NOT NULL,
  topology text NOT NULL,
  domain text,
  specialization text,
  superior_id text,
  capacity integer NOT NULL,
  executor text,
  labels jsonb NOT NULL DEFAULT '{}',
  heartbeat_interval_ms integer,
  status text NOT NULL,
  registered_at timestamptz NOT NULL,
  failed_at timestamptz,
  recovered_at timestamptz,
  terminated_at timestamptz,
  -- Reason of the last failure or termination.
  status_reason text
);
CREATE INDEX agents_tier_domain_idx ON agents (tier, domain, specialization);
CREATE INDEX agents_superior_idx ON agents (superior_id);
CREATE INDEX agents_status_idx ON agents (status);

-- Every finished attempt counted per agent: a fact of the log, whether or not the task later
-- succeeded elsewhere.
CREATE TABLE agent_performance (
  agent_id text PRIMARY KEY,
  tasks_completed integer NOT NULL DEFAULT 0,
  tasks_failed integer NOT NULL DEFAULT 0,
  total_duration_ms bigint NOT NULL DEFAULT 0,
  total_cost numeric(18, 4) NOT NULL DEFAULT 0,
  first_task_at timestamptz,
  last_task_at timestamptz
);

-- Operational events an operator looks for (agent failures, terminations, scaling, alerts,
-- escalations, violations, emergency stops), normalised to one shape; the full detail stays in events.
CREATE TABLE system_events (
  event_id uuid PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  type text NOT NULL,
  severity text NOT NULL,
  tenant_id text NOT NULL,
  agent_id text,
  goal_id text,
  message text NOT NULL
);
CREATE INDEX system_events_occurred_idx ON system_events (occurred_at);
CREATE INDEX system_events_type_idx ON system_events (type, occurred_at);
CREATE INDEX system_events_agent_idx ON system_events (agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE goal_snapshots (
  goal_id text NOT NULL,
  as_of_version integer NOT NULL,
  taken_at timestamptz NOT NULL,
  status text NOT NULL,
  current_phase text,
  progress double precision NOT NULL,
  tasks_total integer NOT NULL,
  tasks_completed integer NOT NULL,
  tasks_failed integer NOT NULL,
  tasks_in_flight integer NOT NULL,
  open_escalations integer NOT NULL,
  cost_so_far numeric(18, 4) NOT NULL,
  state jsonb NOT NULL,
  PRIMARY KEY (goal_id, as_of_version)
);
CREATE INDEX goal_snapshots_taken_idx ON goal_snapshots (taken_at);
