-- Analytics views. Hours are UTC, so the answer does not depend on the session's TimeZone.

-- Tasks completed per hour (a task counts once, however many attempts it took).
CREATE VIEW throughput_per_hour AS
SELECT date_trunc('hour', completed_at AT TIME ZONE 'UTC') AS hour_utc,
       count(*)::integer AS tasks_completed,
       count(DISTINCT goal_id)::integer AS goals,
       round(avg(duration_ms), 1) AS avg_duration_ms,
       sum(cost)::numeric(18, 4) AS cost
FROM tasks
WHERE status = 'COMPLETED'
GROUP BY 1;

-- Load against capacity per agent, with its track record (same open-task rule as get_agent_workload).
CREATE VIEW agent_utilization AS
WITH holders AS (
  SELECT governor_id AS agent_id FROM tasks
  WHERE governor_id IS NOT NULL AND status NOT IN ('COMPLETED', 'CANCELLED')
  UNION ALL
  SELECT mayor_id FROM tasks
  WHERE mayor_id IS NOT NULL AND status NOT IN ('COMPLETED', 'CANCELLED')
  UNION ALL
  SELECT worker_id FROM tasks
  WHERE worker_id IS NOT NULL AND status IN ('ASSIGNED', 'ACCEPTED', 'RUNNING')
),
open AS (
  SELECT agent_id, count(*)::integer AS open_tasks FROM holders GROUP BY agent_id
)
SELECT a.agent_id,
       a.tier,
       a.domain,
       a.specialization,
       a.status,
       a.capacity,
       coalesce(o.open_tasks, 0) AS open_tasks,
       round(coalesce(o.open_tasks, 0)::numeric / nullif(a.capacity, 0), 4) AS utilization,
       coalesce(p.tasks_completed, 0) AS tasks_completed,
       coalesce(p.tasks_failed, 0) AS tasks_failed,
       round(p.tasks_completed::numeric / nullif(p.tasks_completed + p.tasks_failed, 0), 4) AS success_rate,
       round(p.total_duration_ms::numeric / nullif(p.tasks_completed, 0), 1) AS avg_duration_ms
FROM agents a
LEFT JOIN open o ON o.agent_id = a.agent_id
LEFT JOIN agent_performance p ON p.agent_id = a.agent_id;

-- How long each project stayed in each phase: closed phases from PhaseTransitioned, and the last
-- phase of a finished project from its end.
CREATE VIEW phase_durations AS
SELECT e.aggregate_id AS goal_id,
       e.payload ->> 'fromPhase' AS phase,
       e.occurred_at - make_interval(secs => (e.payload ->> 'phaseDurationMs')::bigint / 1000.0) AS started_at,
       e.occurred_at AS ended_at,
       (e.payload ->> 'phaseDurationMs')::bigint AS duration_ms
FROM events e
WHERE e.type = 'PhaseTransitioned' AND e.payload ->> 'fromPhase' IS NOT NULL
UNION ALL
SELECT g.goal_id,
       g.current_phase,
       g.phase_started_at,
       g.ended_at,
       (extract(epoch FROM g.ended_at - g.phase_started_at) * 1000)::bigint
FROM goals g
WHERE g.current_phase IS NOT NULL AND g.ended_at IS NOT NULL AND g.phase_started_at IS NOT NULL;

-- Escalations raised and resolved per hour, against the tasks created in that hour.
CREATE VIEW escalation_rates AS
WITH per_hour AS (
  SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AS hour_utc, type
  FROM events
  WHERE type IN ('TaskCreated', 'EscalationRaised', 'EscalationResolved')
)
SELECT hour_utc,
       (count(*) FILTER (WHERE type = 'TaskCreated'))::integer AS tasks_created,
       (count(*) FILTER (WHERE type = 'EscalationRaised'))::integer AS escalations_raised,
       (count(*) FILTER (WHERE type = 'EscalationResolved'))::integer AS escalations_resolved,
       round((count(*) FILTER (WHERE type = 'EscalationRaised'))::numeric
             / nullif(count(*) FILTER (WHERE type = 'TaskCreated'), 0), 4) AS escalations_per_task
FROM per_hour
GROUP BY hour_utc;

-- Every refusal by the policy engine: DENY decisions and denied resource requests. A denied
-- resource request usually appears twice (its PolicyEvaluated and its ResourceDenied); filter on
-- type to count one of them.
CREATE VIEW policy_denials AS
SELECT e.occurred_at,
       e.tenant_id,
       e.type,
       e.payload ->> 'goalId' AS goal_id,
       CASE WHEN e.type = 'PolicyEvaluated' THEN e.payload ->> 'policyId'
            ELSE e.payload -> 'consultedPolicies' -> 0 ->> 'policyId' END AS policy_id,
       CASE WHEN e.type = 'PolicyEvaluated' THEN e.payload ->> 'category'
            ELSE 'RESOURCE_ALLOCATION' END AS category,
       CASE WHEN e.type = 'PolicyEvaluated' THEN e.payload -> 'subject' ->> 'type'
            ELSE 'ResourceRequested' END AS subject_type,
       CASE WHEN e.type = 'PolicyEvaluated' THEN e.payload -> 'subject' ->> 'id'
            ELSE e.payload ->> 'requestId' END AS subject_id,
       e.payload -> 'reasons' AS reasons,
       e.event_id
FROM events e
WHERE (e.type = 'PolicyEvaluated' AND e.payload ->> 'decision' = 'DENY') OR e.type = 'ResourceDenied';

CREATE VIEW constitutional_violations AS
SELECT e.occurred_at,
       e.tenant_id,
       e.payload ->> 'violationId' AS violation_id,
       e.payload ->> 'goalId' AS goal_id,
       e.payload ->> 'taskId' AS task_id,
       e.payload ->> 'agentId' AS agent_id,
       e.payload ->> 'policyId' AS policy_id,
       (e.payload ->> 'policyVersion')::integer AS policy_version,
       e.payload ->> 'principle' AS principle,
       e.payload ->> 'description' AS description,
       e.payload ->> 'severity' AS severity,
       e.payload ->> 'enforcement' AS enforcement,
       e.event_id
FROM events e
WHERE e.type = 'ConstitutionalViolationDetected';
