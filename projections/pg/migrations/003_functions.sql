-- The two DGM functions. "SET search_path FROM CURRENT" pins each function to the schema it was
-- created in (migrate.ts sets search_path to it), so callers in any schema get this schema's data.

-- Open tasks mirror processors/domain/state.ts: a governor or mayor holds a task until it completes
-- or is cancelled; a worker holds it from assignment until its attempt ends.
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
  last_task_at timestamptz
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  WITH open AS (
    SELECT count(*)::integer AS n
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
         p.last_task_at
  FROM open
  LEFT JOIN agents a ON a.agent_id = get_agent_workload.agent_id
  LEFT JOIN agent_performance p ON p.agent_id = get_agent_workload.agent_id
$$;

-- Always one row: an unknown goal has zero tasks and a null status rather than no answer.
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
  ended_at timestamptz
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
  )
  SELECT g.status,
         g.current_phase,
         c.total,
         c.completed,
         c.failed,
         c.cancelled,
         c.running,
         c.pending,
         coalesce(round(100.0 * c.completed / nullif(c.total, 0), 2), 0),
         c.cost,
         g.submitted_at,
         g.ended_at
  FROM counts c
  LEFT JOIN goals g ON g.goal_id = get_goal_progress.goal_id
$$;
