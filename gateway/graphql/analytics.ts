/**
 * Analytics from PostgreSQL, and the audit trail of a goal: its causal timeline, replayed from the
 * log (projections/audit/timeline.ts), not read from the analytics event table.
 */
import type { TimelineEntry } from "../../projections/audit/timeline.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { audit, timeArg, visibleGoal, type AsOf } from "./goals.js";
import { forbidden, invalid } from "../errors.js";
import type { Principal } from "../auth.js";
import { MODEL_USAGE_GROUPINGS, type ModelUsageGrouping, type ReadSide } from "../read-side.js";

export const typeDefs = /* GraphQL */ `
  "get_agent_workload(agent) of the analytics schema."
  type AgentWorkload {
    tier: String
    status: String
    capacity: Int
    openTasks: Int!
    completedTasks: Int!
    failedTasks: Int!
    utilization: Float
    avgDurationMs: Float
    lastTaskAt: DateTime
    "DGM pending_tasks: open tasks not running (waiting to start, or for a retry); pendingTasks + activeTasks = openTasks."
    pendingTasks: Int!
    "DGM active_tasks: open tasks running."
    activeTasks: Int!
    "DGM avg_execution_time: avgDurationMs as an ISO-8601 duration (e.g. P0Y0M0DT0H0M0.1S for 100 ms)."
    avgExecutionTime: String
    "DGM success_rate: completed / (completed + failed) attempts, 0 to 1; null before the first result."
    successRate: Float
  }

  "get_goal_progress(goal) of the analytics schema."
  type GoalProgress {
    status: String
    currentPhase: String
    totalTasks: Int!
    completedTasks: Int!
    failedTasks: Int!
    cancelledTasks: Int!
    runningTasks: Int!
    pendingTasks: Int!
    percentComplete: Float!
    taskCost: Decimal
    submittedAt: DateTime
    endedAt: DateTime
    "DGM progress_percentage: the same as percentComplete."
    progressPercentage: Float!
  }

  type ThroughputHour {
    hourUtc: DateTime!
    tasksCompleted: Int!
    goals: Int!
  }

  type AgentUtilization {
    agentId: String!
    tier: String
    openTasks: Int!
    capacity: Int
    utilization: Float
  }

  enum ModelUsageGrouping {
    "One row per model (view model_usage_by_model)."
    MODEL
    "One row per goal (view model_usage_by_goal)."
    GOAL
    "One row for the tenant (view model_usage_by_tenant)."
    TENANT
  }

  """
  Model usage totals of the caller's tenant, from the analytics views model_usage_by_model,
  model_usage_by_goal and model_usage_by_tenant: every model call the log records (plans and task
  attempts, failed ones included).
  """
  type ModelUsageTotal {
    tenantId: String!
    "MODEL: the model that answered (e.g. openai:gpt-4o-mini); null for the other groupings."
    model: String
    "GOAL: the goal; null for the other groupings."
    goalId: ID
    "The models used (the model itself for MODEL)."
    models: [String!]!
    "Usage records (events carrying a model usage)."
    records: Int!
    calls: Int!
    planCalls: Int!
    taskCalls: Int!
    tokensIn: Float!
    tokensOut: Float!
    tokensTotal: Float!
    latencyMs: Float!
    "Latency per call, in milliseconds."
    avgLatencyMs: Float
    "Cost of the completed task attempts (a plan or a failed attempt records no cost)."
    cost: Decimal!
    "MODEL and TENANT: goals that used a model."
    goals: Int
    "GOAL: tasks that used a model."
    tasks: Int
    firstAt: DateTime!
    lastAt: DateTime!
  }

  "A planning step of a goal's trail: the request, or the planner's answer and what the president found."
  type TrailPlan {
    requestId: String!
    phase: String
    attempt: Int!
    "On the request: attempts the planner gets."
    maxAttempts: Int
    "The planner asked (request) or that answered (answer, e.g. model/v1)."
    planner: String!
    "On the request: the model configuration asked; on the answer: the model that answered."
    model: String
    "On the request: the previous attempt's problems, given to the planner."
    feedback: [String!]!
    "On the answer: accepted or not; null on the request."
    accepted: Boolean
    problems: [String!]!
    error: String
    taskCount: Int
  }

  "A policy decision, as the PolicyEvaluated event recorded it."
  type PolicyDecision {
    category: String!
    decision: String!
    "The deciding policy, as id@vN."
    decidedBy: String!
    "Every policy version consulted, as id@vN."
    consulted: [String!]!
    reasons: [String!]!
  }

  """
  One event of a goal's causal timeline, replayed from the log: who did what, what caused it and
  what it caused. Policy versions defined or amended while the goal ran, of policies it consulted,
  are in the timeline too (topic polity.policies.events).
  """
  type TrailEvent {
    "Position in the timeline, from 1, in log order; causedBy and caused refer to it."
    seq: Int!
    type: String!
    occurredAt: DateTime!
    actorId: String!
    actorTier: String!
    eventId: ID!
    causationId: String
    topic: String!
    partition: Int!
    offset: String!
    "seq of the event that caused this one; null when the cause is outside the timeline (or none)."
    causedBy: Int
    "seq of the events this one caused."
    caused: [Int!]!
    "The event's telling fields on one line."
    summary: String!
    "On PolicyEvaluated: the decision."
    policy: PolicyDecision
    "On other events: the policy versions (id@vN) consulted by the evaluation made for the same cause."
    decidedUnder: [String!]!
    "On PlanRequested and PlanProposed: the planning step."
    plan: TrailPlan
    "On PlanProposed, TaskCompleted and TaskFailed that called a model: its usage, with the prompt's and the answer's digests."
    usage: ModelUsage
    "The event's fields other than the envelope, as decoded from the log."
    payload: JSON!
  }

  "A row of the analytics view policy_denials: a PolicyEvaluated that denied, or a ResourceDenied."
  type PolicyDenial {
    occurredAt: DateTime!
    "PolicyEvaluated or ResourceDenied (a denied resource request usually appears as both)."
    type: String!
    goalId: ID
    policyId: String
    category: String
    "What was decided on: the command type (e.g. SubmitGoal), or ResourceRequested."
    subjectType: String
    subjectId: String
    reasons: [String!]!
    eventId: ID!
  }

  "A row of the analytics view constitutional_violations (ConstitutionalViolationDetected)."
  type ConstitutionalViolationRecord {
    occurredAt: DateTime!
    violationId: ID
    goalId: ID
    taskId: String
    agentId: String
    policyId: String
    policyVersion: Int
    principle: String
    description: String
    severity: String
    enforcement: String
    eventId: ID!
  }

  extend type Agent {
    workload: AgentWorkload
  }
  extend type Goal {
    analytics: GoalProgress
    """
    The goal's causal timeline, replayed from the log, in log order: from the start, or from the
    first record at or after 'from'. On a goal asked for with asOf, the events up to that time.
    """
    auditTrail(limit: Int = 1000, from: DateTime): [TrailEvent!]!
  }

  extend type Query {
    agentWorkload(agentId: ID!): AgentWorkload
    goalProgress(goalId: ID!): GoalProgress
    throughput(hours: Int = 24): [ThroughputHour!]!
    utilization: [AgentUtilization!]!
    "The goal's causal timeline, replayed from the log (see Goal.auditTrail)."
    auditTrail(goalId: ID!, limit: Int = 1000, from: DateTime): [TrailEvent!]!
    """
    Model usage totals of the caller's tenant, grouped by model, goal or tenant. goalId (GOAL only)
    and model narrow the rows; limit is 1 to 1000. An agent token must name a goal it sees.
    """
    modelUsage(by: ModelUsageGrouping = MODEL, goalId: ID, model: String, limit: Int = 100): [ModelUsageTotal!]!
    """
    Policy denials of the caller's tenant, newest first (view policy_denials); limit is 1 to 1000.
    An agent token sees those of the goals it sees.
    """
    policyDenials(limit: Int = 50): [PolicyDenial!]!
    """
    Constitutional violations of the caller's tenant, newest first (view constitutional_violations);
    limit is 1 to 1000. An agent token sees those of the goals it sees.
    """
    constitutionalViolations(limit: Int = 50): [ConstitutionalViolationRecord!]!
  }
`;

type Row = Record<string, unknown>;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function workload(r: Row | null) {
  if (!r) return null;
  return {
    tier: r.tier,
    status: r.status,
    capacity: r.capacity,
    openTasks: r.open_tasks,
    completedTasks: r.completed_tasks,
    failedTasks: r.failed_tasks,
    utilization: num(r.utilization),
    avgDurationMs: num(r.avg_duration_ms),
    lastTaskAt: r.last_task_at,
    pendingTasks: r.pending_tasks ?? 0,
    activeTasks: r.active_tasks ?? 0,
    avgExecutionTime: isoDuration(r.avg_execution_time),
    successRate: num(r.success_rate),
  };
}

function progress(r: Row | null) {
  if (!r) return null;
  return {
    status: r.status,
    currentPhase: r.current_phase,
    totalTasks: r.total_tasks,
    completedTasks: r.completed_tasks,
    failedTasks: r.failed_tasks,
    cancelledTasks: r.cancelled_tasks,
    runningTasks: r.running_tasks,
    pendingTasks: r.pending_tasks,
    percentComplete: num(r.percent_complete) ?? 0,
    taskCost: r.task_cost,
    submittedAt: r.submitted_at,
    endedAt: r.ended_at,
    progressPercentage: num(r.progress_percentage) ?? num(r.percent_complete) ?? 0,
  };
}

/** A PostgreSQL interval (node-postgres gives an object with toISOString) as an ISO-8601 duration. */
function isoDuration(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  const interval = v as { toISOString?: () => string };
  return typeof interval.toISOString === "function" ? interval.toISOString() : String(v);
}

const count = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));

/** A row of model_usage_by_model, _by_goal or _by_tenant, as GraphQL and REST show it. */
export function modelUsageTotal(r: Row) {
  return {
    tenantId: r.tenant_id,
    model: r.model ?? null,
    goalId: r.goal_id ?? null,
    models: (r.models as string[] | undefined) ?? (r.model ? [r.model as string] : []),
    records: count(r.records),
    calls: count(r.calls),
    planCalls: count(r.plan_calls),
    taskCalls: count(r.task_calls),
    tokensIn: count(r.tokens_in),
    tokensOut: count(r.tokens_out),
    tokensTotal: count(r.tokens_total),
    latencyMs: count(r.latency_ms),
    avgLatencyMs: num(r.avg_latency_ms),
    cost: r.cost,
    goals: r.goals ?? null,
    tasks: r.tasks ?? null,
    firstAt: r.first_at,
    lastAt: r.last_at,
  };
}

export interface ModelUsageArgs {
  by?: string | null;
  goalId?: string | null;
  model?: string | null;
  limit?: number | null;
}

/**
 * Model usage totals for a caller (GraphQL modelUsage, REST /metrics/model-usage): always of the
 * caller's tenant (in the query); an agent token only for a goal it sees, like goalProgress.
 */
export async function modelUsageFor(
  read: ReadSide,
  p: Principal,
  visible: (goalId: string) => Promise<unknown>,
  args: ModelUsageArgs,
) {
  const by = (args.by ?? "MODEL") as ModelUsageGrouping;
  if (!MODEL_USAGE_GROUPINGS.includes(by)) throw invalid("by", `must be one of ${MODEL_USAGE_GROUPINGS.join(", ")}`);
  const limit = args.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid("limit", "must be from 1 to 1000");
  if (args.goalId && by !== "GOAL") throw invalid("goalId", "narrows the GOAL grouping only; ask with by GOAL");
  if (p.role === "agent" && !args.goalId)
    throw forbidden("an agent token sees model usage of one goal its subtree works on; give goalId (by GOAL)");
  if (args.goalId && !(await visible(args.goalId))) return [];
  const rows = await read.modelUsage(p.tenantId, by, { goalId: args.goalId, model: args.model, limit });
  return rows.map(modelUsageTotal);
}

/** Rows of a governance view of the caller's tenant; an agent token keeps those of goals it sees. */
async function governanceRows(
  ctx: GatewayContext,
  view: "policy_denials" | "constitutional_violations",
  limit: number,
): Promise<Row[]> {
  const p = caller(ctx, "read");
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid("limit", "must be from 1 to 1000");
  const rows = await ctx.read.governanceRecords(p.tenantId, view, limit);
  if (p.role !== "agent") return rows;
  const seen = new Map<string, boolean>();
  const kept: Row[] = [];
  for (const r of rows) {
    const goalId = r.goal_id as string | null;
    if (!goalId) continue;
    if (!seen.has(goalId)) seen.set(goalId, !!(await visibleGoal(ctx, goalId)));
    if (seen.get(goalId)) kept.push(r);
  }
  return kept;
}

const reasonsOf = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

function trailEvent(e: TimelineEntry) {
  return {
    seq: e.seq,
    type: e.type,
    occurredAt: e.occurredAt,
    actorId: e.actor,
    actorTier: e.actorTier,
    eventId: e.eventId,
    causationId: e.causationId,
    topic: e.topic,
    partition: e.partition,
    offset: e.offset,
    causedBy: e.causedBy,
    caused: e.caused,
    summary: e.summary,
    policy: e.policy,
    decidedUnder: e.decidedUnder,
    plan: e.plan,
    usage: e.usage,
    payload: e.payload,
  };
}

/**
 * The goal's timeline from the log. `until` (a goal read as of a time, already found visible then)
 * keeps the events that occurred up to it; otherwise the goal must be visible now.
 */
async function goalTrail(ctx: GatewayContext, goalId: string, args: { limit: number; from?: unknown }, until?: Date) {
  const { limit } = args;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalid("limit", "must be from 1 to 10000");
  const p = caller(ctx, "read");
  const from = timeArg("from", args.from);
  if (!until && !(await visibleGoal(ctx, goalId))) return [];
  const timeline = await audit(ctx).timeline(goalId, p.tenantId, from);
  const entries = until
    ? timeline.entries.filter((e) => Date.parse(e.occurredAt) <= until.getTime())
    : timeline.entries;
  return entries.slice(0, limit).map(trailEvent);
}

export const resolvers = {
  Query: {
    agentWorkload: (_: unknown, { agentId }: { agentId: string }, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        return workload(await ctx.read.agentWorkload(agentId));
      }),
    goalProgress: (_: unknown, { goalId }: { goalId: string }, ctx: GatewayContext) =>
      guarded(async () => {
        const p = caller(ctx, "read");
        // An agent token sees only the goals its subtree works on, here as in goal(id).
        if (p.role === "agent" && !(await visibleGoal(ctx, goalId))) return null;
        return progress(await ctx.read.goalProgress(p.tenantId, goalId));
      }),
    throughput: (_: unknown, { hours }: { hours: number }, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        if (!Number.isInteger(hours) || hours < 1 || hours > 24 * 90) throw invalid("hours", "must be from 1 to 2160");
        return (await ctx.read.throughput(hours)).map((r) => ({
          hourUtc: r.hour_utc,
          tasksCompleted: r.tasks_completed,
          goals: r.goals,
        }));
      }),
    utilization: (_: unknown, __: unknown, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        return (await ctx.read.utilization()).map((r) => ({
          agentId: r.agent_id,
          tier: r.tier,
          openTasks: r.open_tasks ?? 0,
          capacity: r.capacity,
          utilization: num(r.utilization),
        }));
      }),
    auditTrail: (
      _: unknown,
      { goalId, ...args }: { goalId: string; limit: number; from?: unknown },
      ctx: GatewayContext,
    ) => guarded(() => goalTrail(ctx, goalId, args)),
    modelUsage: (_: unknown, args: ModelUsageArgs, ctx: GatewayContext) =>
      guarded(() => modelUsageFor(ctx.read, caller(ctx, "read"), (id) => visibleGoal(ctx, id), args)),
    policyDenials: (_: unknown, { limit }: { limit: number }, ctx: GatewayContext) =>
      guarded(async () =>
        (await governanceRows(ctx, "policy_denials", limit)).map((r) => ({
          occurredAt: r.occurred_at,
          type: r.type,
          goalId: r.goal_id ?? null,
          policyId: r.policy_id ?? null,
          category: r.category ?? null,
          subjectType: r.subject_type ?? null,
          subjectId: r.subject_id ?? null,
          reasons: reasonsOf(r.reasons),
          eventId: r.event_id,
        })),
      ),
    constitutionalViolations: (_: unknown, { limit }: { limit: number }, ctx: GatewayContext) =>
      guarded(async () =>
        (await governanceRows(ctx, "constitutional_violations", limit)).map((r) => ({
          occurredAt: r.occurred_at,
          violationId: r.violation_id ?? null,
          goalId: r.goal_id ?? null,
          taskId: r.task_id ?? null,
          agentId: r.agent_id ?? null,
          policyId: r.policy_id ?? null,
          policyVersion: r.policy_version ?? null,
          principle: r.principle ?? null,
          description: r.description ?? null,
          severity: r.severity ?? null,
          enforcement: r.enforcement ?? null,
          eventId: r.event_id,
        })),
      ),
  },
  Agent: {
    workload: async (a: { _id: string }, _: unknown, ctx: GatewayContext) =>
      workload(await ctx.read.agentWorkload(a._id)),
  },
  Goal: {
    analytics: async (g: { _id: string; tenantId: string }, _: unknown, ctx: GatewayContext) =>
      progress(await ctx.read.goalProgress(g.tenantId, g._id)),
    auditTrail: (g: AsOf<{ _id: string }>, args: { limit: number; from?: unknown }, ctx: GatewayContext) =>
      guarded(() => goalTrail(ctx, g._id, args, g._asOf?.asOf)),
  },
};
