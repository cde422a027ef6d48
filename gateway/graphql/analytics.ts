/** Analytics from PostgreSQL, and the event trail of a goal (the events table). */
import { caller, guarded, type GatewayContext } from "./context.js";
import { visibleGoal } from "./goals.js";
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

  "One event of a goal as the log holds it."
  type TrailEvent {
    type: String!
    occurredAt: DateTime!
    actorId: String!
    actorTier: String!
    eventId: ID!
    causationId: String
    topic: String!
    partition: Int!
    offset: String!
    payload: JSON!
  }

  extend type Agent {
    workload: AgentWorkload
  }
  extend type Goal {
    analytics: GoalProgress
    "The goal's events in log order, from the analytics event table."
    auditTrail(limit: Int = 1000): [TrailEvent!]!
  }

  extend type Query {
    agentWorkload(agentId: ID!): AgentWorkload
    goalProgress(goalId: ID!): GoalProgress
    throughput(hours: Int = 24): [ThroughputHour!]!
    utilization: [AgentUtilization!]!
    auditTrail(goalId: ID!, limit: Int = 1000): [TrailEvent!]!
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

async function goalTrail(ctx: GatewayContext, goalId: string, limit: number) {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalid("limit", "must be from 1 to 10000");
  const p = caller(ctx, "read");
  if (!(await visibleGoal(ctx, goalId))) return [];
  return await ctx.read.eventTrail(p.tenantId, goalId, limit);
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
    auditTrail: (_: unknown, { goalId, limit }: { goalId: string; limit: number }, ctx: GatewayContext) =>
      guarded(() => goalTrail(ctx, goalId, limit)),
  },
  Agent: {
    workload: async (a: { _id: string }, _: unknown, ctx: GatewayContext) =>
      workload(await ctx.read.agentWorkload(a._id)),
  },
  Goal: {
    analytics: async (g: { _id: string; tenantId: string }, _: unknown, ctx: GatewayContext) =>
      progress(await ctx.read.goalProgress(g.tenantId, g._id)),
    auditTrail: (g: { _id: string }, { limit }: { limit: number }, ctx: GatewayContext) =>
      guarded(() => goalTrail(ctx, g._id, limit)),
  },
};
