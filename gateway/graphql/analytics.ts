/**
 * Analytics from PostgreSQL, and the audit trail of a goal: its causal timeline, replayed from the
 * log (projections/audit/timeline.ts), not read from the analytics event table.
 */
import type { TimelineEntry } from "../../projections/audit/timeline.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { audit, timeArg, visibleGoal, type AsOf } from "./goals.js";
import { invalid } from "../errors.js";

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
    "The event's fields other than the envelope, as decoded from the log."
    payload: JSON!
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
  };
}

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
