-- The DGM design's own output columns of its two functions, beside the richer ones 003 gave them,
-- and its composite indexes, on the real column names of these tables.
--
-- A function's result columns cannot be changed in place (CREATE OR REPLACE refuses another row
-- type), so each function is dropped and created again: every column it had, in the same order,
-- then the DGM's. Callers that name columns, or read them by name from SELECT *, see no change.

DROP FUNCTION get_agent_workload(text);

-- Open tasks mirror processors/domain/state.ts, as in 003: a governor or mayor holds a task until it
-- completes or is cancelled; a worker holds it from assignment until its attempt ends. Of these,
-- active_tasks are RUNNING and pending_tasks are the rest (waiting to start, or at a governor or
-- mayor waiting for a retry), so pending_tasks + active_tasks = open_tasks. avg_execution_time is
-- avg_duration_ms as an interval; success_rate is completed / (completed + failed) attempts, as in
-- the agent_utilization view (null before the first result).
CREATE FUNCTION get_agent_workload(agent_id text)
RETURNS TABLE (
  tier text,
  status text,
  capacity integer,
  open_tasks integer,
  completed_tasks integer,
  failed_tasks integer,
  utilization numeric,
  avg_duration_ms numeric,
  last_task_at timestamptz,
  pending_tasks integer,
  active_tasks integer,
  avg_execution_time interval,
  success_rate numeric
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  WITH open AS (
    SELECT count(*)::integer AS n,
           (count(*) FILTER (WHERE t.status = 'RUNNING'))::integer AS running
    FROM tasks t
    WHERE t.status NOT IN ('COMPLETED', 'CANCELLED')
      AND (t.governor_id = get_agent_workload.agent_id
        OR t.mayor_id = get_agent_workload.agent_id
        OR (t.worker_id = get_agent_workload.agent_id AND t.status IN ('ASSIGNED', 'ACCEPTED', 'RUNNING')))
  )
  SELECT a.tier,
         a.status,
         a.capacity,
         open.n,
         coalesce(p.tasks_completed, 0),
         coalesce(p.tasks_failed, 0),
         round(open.n::numeric / nullif(a.capacity, 0), 4),
         round(p.total_duration_ms::numeric / nullif(p.tasks_completed, 0), 1),
         p.last_task_at,
         open.n - open.running,
         open.running,
         make_interval(secs => (round(p.total_duration_ms::numeric / nullif(p.tasks_completed, 0), 1) / 1000)::double precision),
         round(p.tasks_completed::numeric / nullif(p.tasks_completed + p.tasks_failed, 0), 4)
  FROM open
  LEFT JOIN agents a ON a.agent_id = get_agent_workload.agent_id
  LEFT JOIN agent_performance p ON p.agent_id = get_agent_workload.agent_id
$$;

DROP FUNCTION get_goal_progress(text);

-- Always one row, as in 003. progress_percentage is the DGM's name of percent_complete.
CREATE FUNCTION get_goal_progress(goal_id text)
RETURNS TABLE (
  status text,
  current_phase text,
  total_tasks integer,
  completed_tasks integer,
  failed_tasks integer,
  cancelled_tasks integer,
  running_tasks integer,
  pending_tasks integer,
  percent_complete numeric,
  task_cost numeric,
  submitted_at timestamptz,
  ended_at timestamptz,
  progress_percentage numeric
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  WITH counts AS (
    SELECT count(*)::integer AS total,
           (count(*) FILTER (WHERE t.status = 'COMPLETED'))::integer AS completed,
           (count(*) FILTER (WHERE t.status IN ('FAILED', 'TIMED_OUT')))::integer AS failed,
           (count(*) FILTER (WHERE t.status = 'CANCELLED'))::integer AS cancelled,
           (count(*) FILTER (WHERE t.status IN ('ASSIGNED', 'ACCEPTED', 'RUNNING')))::integer AS running,
           (count(*) FILTER (WHERE t.status IN ('PENDING', 'READY')))::integer AS pending,
           coalesce(sum(t.cost), 0)::numeric(18, 4) AS cost
    FROM tasks t
    WHERE t.goal_id = get_goal_progress.goal_id
  ),
  percent AS (
    SELECT coalesce(round(100.0 * c.completed / nullif(c.total, 0), 2), 0) AS value FROM counts c
  )
  SELECT g.status,
         g.current_phase,
         c.total,
         c.completed,
         c.failed,
         c.cancelled,
         c.running,
         c.pending,
         percent.value,
         c.cost,
         g.submitted_at,
         g.ended_at,
         percent.value
  FROM counts c
  CROSS JOIN percent
  LEFT JOIN goals g ON g.goal_id = get_goal_progress.goal_id
$$;

-- The DGM composite indexes. The queue by status and priority, and a domain's tasks by status:
CREATE INDEX tasks_status_priority_idx ON tasks (status, priority DESC);
CREATE INDEX tasks_domain_status_idx ON tasks (domain, status);
-- Agent performance by agent, latest first. Here agent_performance keeps one row per agent (its
-- totals), so (agent_id, last_task_at DESC) is the DGM's (agent, recorded_at DESC) on this table's
-- columns; the per-attempt record by agent and time is model_calls (agent_id, occurred_at) for
-- model attempts and events for every attempt.
CREATE INDEX agent_performance_agent_recent_idx ON agent_performance (agent_id, last_task_at DESC);
