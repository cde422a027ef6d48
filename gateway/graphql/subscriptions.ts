/**
 * Live subscriptions, fed by the gateway's LiveFeed (Kafka). Every stream is filtered by the
 * caller's tenant; goal streams also check that the goal is the caller's before they start. Agent
 * streams deliver the agents the caller sees (its tenant's and the platform-wide ones, as every
 * agent read: visibility.ts), following registrations as they come.
 *
 * Goal streams start with the goal's events still in the feed's recent history, then go on live,
 * so the natural sequence "submit, then subscribe" misses nothing, even when a small goal completed
 * before the subscription arrived (the stream then delivers the events and completes). A goal the
 * read model does not show yet (just submitted, or about to be: a client may subscribe to the
 * goalId it is going to submit) is waited for up to GOAL_APPEARS_MS before the answer is NOT_FOUND.
 */
import type { LiveEvent, LiveSubscription } from "../live.js";
import { ownerOf } from "../../processors/domain/kernel/tenancy.js";
import { maySee } from "../auth.js";
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
    "True when written before the subscription started (delivered from the gateway's recent history)."
    replayed: Boolean!
    payload: JSON!
  }

  extend type Subscription {
    """
    Every event of the goal (goal and task topics), until it completes, fails, stops or is
    rejected: its planning (PlanRequested, PlanProposed with the model's usage) and its workers'
    progress (TaskProgressed) included. First those the gateway still holds from before the
    subscription (replayed), then live. A goal not visible yet (just submitted, or about to be with
    this goalId) is waited for a few seconds.
    """
    goalProgress(goalId: ID!): LiveEvent!
    "The task events of a goal, TaskProgressed included (with the same replay and wait as goalProgress)."
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
const GOAL_FINAL_STATUSES = new Set(["COMPLETED", "FAILED", "STOPPED", "REJECTED"]);

/** How long a goal stream waits for a goal that is not (yet) visible before answering NOT_FOUND. */
export const GOAL_APPEARS_MS = 3_000;

type Value = {
  envelope: { tenantId: string; occurredAt: Date; eventId: string; causationId: string | null };
  goalId?: string;
  taskId?: string;
  agentId?: string;
};
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
    replayed: e.replayed ?? false,
    payload,
  };
}

export type Source = Pick<LiveSubscription, "next" | "return">;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An async iterator of GraphQL payloads for one subscription field (`only` filters further). */
function stream(
  source: Source,
  field: string,
  only: (e: LiveEvent) => boolean = () => true,
): AsyncIterable<Record<string, unknown>> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        for (;;) {
          const r = await source.next();
          if (r.done) return { done: true, value: undefined };
          if (only(r.value)) return { done: false, value: { [field]: toLive(r.value) } };
        }
      },
      return: async () => {
        await source.return();
        return { done: true, value: undefined };
      },
    }),
  };
}

/** How long a goal's final event waits for the event that caused it (see endsWithFinal). */
export const CAUSE_WAIT_MS = 2_000;

/**
 * Ends a goal's stream with its final event (GoalCompleted, ...), delivered after the event that
 * caused it. Kafka orders each partition, not the topics among them: the cause (the last task's
 * event, on polity.tasks.events) can reach the feed after the final event (polity.goals.events),
 * and closing at once would drop it and the goal's task events before it. The final event waits
 * for its cause at most CAUSE_WAIT_MS; events of the goal after it are not delivered.
 */
export function endsWithFinal(source: Source): Source {
  const seen = new Set<string>();
  let held: LiveEvent | null = null;
  let deadline = 0;
  let over = false;
  const finish = async (e: LiveEvent): Promise<IteratorResult<LiveEvent>> => {
    over = true;
    await source.return();
    return { done: false, value: e };
  };
  return {
    next: async () => {
      for (;;) {
        if (over) return { done: true, value: undefined };
        if (held) {
          const cause = valueOf(held).envelope.causationId;
          if (!cause || seen.has(cause) || Date.now() >= deadline) return finish(held);
        }
        const r = held
          ? await Promise.race([source.next(), sleep(deadline - Date.now()).then(() => null)])
          : await source.next();
        if (r === null) continue; // waited long enough for the cause
        if (r.done) return held ? finish(held) : r;
        if (!held && GOAL_FINAL_EVENTS.has(r.value.event.type)) {
          held = r.value;
          deadline = Date.now() + CAUSE_WAIT_MS;
          continue;
        }
        seen.add(valueOf(r.value).envelope.eventId);
        return r;
      }
    },
    return: async () => {
      over = true;
      return source.return();
    },
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
  await ctx.live.ready;
  // Subscribed before the goal is looked up, so nothing falls in between; every event of the goal
  // in the caller's tenant is taken (it also proves the goal is the caller's), `accept` narrows.
  const source = ctx.live.subscribe(
    (e) => valueOf(e).envelope.tenantId === p.tenantId && valueOf(e).goalId === goalId,
    undefined,
    { replay: true },
  );
  // Fresh reads: the request's loaders would answer every retry with the first miss.
  const look = () => {
    ctx.loaders().goal.clear(goalId);
    ctx.loaders().tasksByGoal.clear(goalId);
    return visibleGoal(ctx, goalId);
  };
  try {
    const deadline = Date.now() + GOAL_APPEARS_MS;
    let goal = await look();
    // An agent token sees a goal only through the read model (its subtree's tasks).
    while (!goal && (p.role === "agent" || source.received === 0) && Date.now() < deadline) {
      await Promise.race([source.first, sleep(200)]);
      goal = await look();
    }
    if (!goal && (p.role === "agent" || source.received === 0)) throw notFound(`goal "${goalId}"`);
    // Over already: what the history holds of it is all there will be.
    if (closes && goal?.status && GOAL_FINAL_STATUSES.has(goal.status)) source.end();
  } catch (e) {
    await source.return();
    throw e;
  }
  return stream(closes ? endsWithFinal(source) : source, field, accept);
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
          // The agents the caller sees now; registrations that follow add theirs (or hide another's).
          const seen = new Set((await ctx.viewer().agents(await ctx.read.agents({}))).map((a) => a._id));
          await ctx.live.ready;
          const source = ctx.live.subscribe((e) => {
            if (!AGENT_HEALTH.has(e.event.type)) return false;
            const v = valueOf(e);
            const owner = ownerOf(v.envelope.tenantId);
            // A pool's resize names no agent: it is the business of the pool's owner.
            if (e.event.type === "AgentsScaled") return !agentId && !subtree && maySee(p, owner);
            const id = v.agentId;
            if (id === undefined) return false;
            if (e.event.type === "AgentRegistered") {
              if (maySee(p, owner)) seen.add(id);
              else seen.delete(id);
            }
            if (!seen.has(id)) return false;
            if (agentId && id !== agentId) return false;
            return !subtree || subtree.has(id);
          });
          return stream(source, "agentHealth");
        }),
    },
    escalations: {
      subscribe: (_: unknown, { goalId }: { goalId?: string }, ctx: GatewayContext) =>
        guarded(async () => {
          const p = caller(ctx, "read");
          if (goalId && !(await visibleGoal(ctx, goalId))) throw notFound(`goal "${goalId}"`);
          await ctx.live.ready;
          const source = ctx.live.subscribe(
            (e) =>
              ESCALATIONS.has(e.event.type) &&
              valueOf(e).envelope.tenantId === p.tenantId &&
              (!goalId || valueOf(e).goalId === goalId),
          );
          return stream(source, "escalations");
        }),
    },
    phaseTransitions: {
      subscribe: (_: unknown, { goalId }: { goalId?: string }, ctx: GatewayContext) =>
        guarded(async () => {
          const p = caller(ctx, "read");
          if (goalId && !(await visibleGoal(ctx, goalId))) throw notFound(`project "${goalId}"`);
          await ctx.live.ready;
          const source = ctx.live.subscribe(
            (e) =>
              PHASES.has(e.event.type) &&
              valueOf(e).envelope.tenantId === p.tenantId &&
              (!goalId || valueOf(e).goalId === goalId),
          );
          return stream(source, "phaseTransitions");
        }),
    },
  },
};
