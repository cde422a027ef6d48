/**
 * Live subscriptions, fed by the gateway's LiveFeed (Kafka). Every stream is filtered by the
 * caller's tenant; goal streams also check that the goal is the caller's before they start.
 */
import type { LiveEvent } from "../live.js";
import { notFound } from "../errors.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { visibleGoal } from "./goals.js";

export const typeDefs = /* GraphQL */ `
  "One event from the log, as delivered live."
  type LiveEvent {
    type: String!
    goalId: ID
    taskId: ID
    agentId: ID
    occurredAt: DateTime!
    "When the broker appended it; occurredAt to loggedAt is the write latency."
    loggedAt: DateTime!
    topic: String!
    offset: String!
    payload: JSON!
  }

  extend type Subscription {
    "Every event of the goal (goal and task topics), until it completes, fails or stops."
    goalProgress(goalId: ID!): LiveEvent!
    "The task events of a goal."
    taskEvents(goalId: ID!): LiveEvent!
    "Heartbeats, failures, recoveries, registrations and scaling of agents."
    agentHealth(agentId: ID): LiveEvent!
    "Escalations raised and resolved, of one goal or all of the tenant's."
    escalations(goalId: ID): LiveEvent!
    "Phase transitions (and refusals) of one project or all of the tenant's."
    phaseTransitions(goalId: ID): LiveEvent!
  }
`;

const GOAL_FINAL_EVENTS = new Set(["GoalCompleted", "GoalFailed", "GoalStopped", "GoalRejected"]);
const AGENT_HEALTH = new Set([
  "AgentRegistered",
  "AgentHeartbeat",
  "AgentFailed",
  "AgentRecovered",
  "AgentTerminated",
  "AgentsScaled",
]);
const ESCALATIONS = new Set(["EscalationRaised", "EscalationResolved", "ConflictRaised", "ConflictResolved"]);
const PHASES = new Set(["PhaseTransitioned", "PhaseTransitionRejected"]);

type Value = { envelope: { tenantId: string; occurredAt: Date }; goalId?: string; taskId?: string; agentId?: string };
const valueOf = (e: LiveEvent) => e.event.value as unknown as Value;

export function toLive(e: LiveEvent) {
  const v = valueOf(e);
  const { envelope: _envelope, ...payload } = v;
  return {
    type: e.event.type,
    goalId: v.goalId ?? null,
    taskId: v.taskId ?? null,
    agentId: v.agentId ?? null,
    occurredAt: v.envelope.occurredAt,
    loggedAt: e.loggedAt,
    topic: e.topic,
    offset: e.offset,
    payload,
  };
}

/** An async iterator of GraphQL payloads for one subscription field. */
function stream(
  ctx: GatewayContext,
  field: string,
  accept: (e: LiveEvent) => boolean,
  until?: (e: LiveEvent) => boolean,
): AsyncIterable<Record<string, unknown>> {
  const source = ctx.live.subscribe(accept, until);
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const r = await source.next();
        return r.done ? { done: true, value: undefined } : { done: false, value: { [field]: toLive(r.value) } };
      },
      return: async () => {
        await source.return?.();
        return { done: true, value: undefined };
      },
    }),
  };
}

async function goalStream(
  ctx: GatewayContext,
  goalId: string,
  field: string,
  accept: (e: LiveEvent) => boolean,
  closes: boolean,
) {
  const p = caller(ctx, "read");
  if (!(await visibleGoal(ctx, goalId))) throw notFound(`goal "${goalId}"`);
  await ctx.live.ready;
  return stream(
    ctx,
    field,
    (e) => valueOf(e).envelope.tenantId === p.tenantId && valueOf(e).goalId === goalId && accept(e),
    closes ? (e) => GOAL_FINAL_EVENTS.has(e.event.type) : undefined,
  );
}

export const resolvers = {
  Subscription: {
    goalProgress: {
      subscribe: (_: unknown, { goalId }: { goalId: string }, ctx: GatewayContext) =>
        guarded(() => goalStream(ctx, goalId, "goalProgress", (e) => e.topic !== "polity.agents.events", true)),
    },
    taskEvents: {
      subscribe: (_: unknown, { goalId }: { goalId: string }, ctx: GatewayContext) =>
        guarded(() => goalStream(ctx, goalId, "taskEvents", (e) => e.topic === "polity.tasks.events", false)),
    },
    agentHealth: {
      subscribe: (_: unknown, { agentId }: { agentId?: string }, ctx: GatewayContext) =>
        guarded(async () => {
          const p = caller(ctx, "read");
          const subtree = p.role === "agent" ? await ctx.subtree() : null;
          await ctx.live.ready;
          return stream(ctx, "agentHealth", (e) => {
            if (!AGENT_HEALTH.has(e.event.type)) return false;
            const id = valueOf(e).agentId;
            if (agentId && id !== agentId) return false;
            return !subtree || (id !== undefined && subtree.has(id));
          });
        }),
    },
    escalations: {
      subscribe: (_: unknown, { goalId }: { goalId?: string }, ctx: GatewayContext) =>
        guarded(async () => {
          const p = caller(ctx, "read");
          if (goalId && !(await visibleGoal(ctx, goalId))) throw notFound(`goal "${goalId}"`);
          await ctx.live.ready;
          return stream(
            ctx,
            "escalations",
            (e) =>
              ESCALATIONS.has(e.event.type) &&
              valueOf(e).envelope.tenantId === p.tenantId &&
              (!goalId || valueOf(e).goalId === goalId),
          );
        }),
    },
    phaseTransitions: {
      subscribe: (_: unknown, { goalId }: { goalId?: string }, ctx: GatewayContext) =>
        guarded(async () => {
          const p = caller(ctx, "read");
          if (goalId && !(await visibleGoal(ctx, goalId))) throw notFound(`project "${goalId}"`);
          await ctx.live.ready;
          return stream(
            ctx,
            "phaseTransitions",
            (e) =>
              PHASES.has(e.event.type) &&
              valueOf(e).envelope.tenantId === p.tenantId &&
              (!goalId || valueOf(e).goalId === goalId),
          );
        }),
    },
  },
};
