import type { Kafka } from "kafkajs";
import { agentsAsOf, goalAsOf, snapshotAsOf, tasksAsOf, type Snapshot } from "../../projections/audit/as-of.js";
import { goalTimeline, type Timeline } from "../../projections/audit/timeline.js";
import {
  goalModelUsage,
  noTaskUsage,
  noUsage,
  phaseProgressOf,
  tierHolders,
  type AgentDoc,
  type GoalDoc,
  type TaskDoc,
} from "../../projections/mongo/state-store.js";
import type { Codec } from "../../schemas/codec.js";
import { DEAD_LETTER_TOPIC, physicalTopic } from "../../schemas/catalog.js";
import type { DeadLetter } from "../../schemas/generated/types.js";
import { scanLog } from "../../projections/audit/log.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { entries } from "./common.js";
import { forbidden, GatewayError, invalid } from "../errors.js";
import { goalCursor } from "../read-side.js";
import { graphqlEnum } from "../contract/enums.js";

export const typeDefs = /* GraphQL */ `
  ${graphqlEnum("GoalKind")}
  ${graphqlEnum("GoalStatus")}
  ${graphqlEnum("Phase")}
  ${graphqlEnum("Topology")}

  type PhaseProgress {
    phase: Phase!
    startedAt: DateTime!
    endedAt: DateTime
    "Planner that decomposed the phase (e.g. templates/v1, model/v1); null until it is decomposed."
    planner: String
  }

  """
  What a model call (or one attempt's calls together) used, as the log records it: the backend and
  model that answered, tokens read and written, calls, wall time, and SHA-256 digests (hex) of the
  prompt sent and the answer.
  """
  type ModelUsage {
    model: String!
    tokensIn: Float!
    tokensOut: Float!
    calls: Int!
    latencyMs: Float!
    promptDigest: String
    answerDigest: String
  }

  "Model calls summed."
  type ModelUsageSum {
    tokensIn: Float!
    tokensOut: Float!
    calls: Int!
    latencyMs: Float!
  }

  enum PlanAttemptStatus {
    "Asked of the planner, not answered yet."
    REQUESTED
    "The president accepted the plan; GoalDecomposed follows."
    ACCEPTED
    "No plan, or one the president refused; asked again with its problems, or the goal is given up."
    REFUSED
  }

  "One planning attempt of a goal or of a project's phase: its PlanRequested and, once answered, its PlanProposed."
  type PlanAttempt {
    requestId: ID!
    "Phase planned; null for a plain goal."
    phase: Phase
    "From 1."
    attempt: Int!
    maxAttempts: Int
    status: PlanAttemptStatus!
    "The model configuration asked (a topology 'models' name)."
    modelConfig: String
    "Problems of the previous attempt, given to the planner."
    feedback: [String!]!
    requestedAt: DateTime
    "Planner that answered, with its version (e.g. model/v1); null until answered."
    planner: String
    "Null until answered."
    accepted: Boolean
    "What the president found wrong with the plan."
    problems: [String!]!
    "Why the planner produced no plan."
    error: String
    "The planner's model call; null for a planner that calls none."
    usage: ModelUsage
    "Tasks proposed; null until answered."
    taskCount: Int
    answeredAt: DateTime
  }
  type StatusCount {
    status: String!
    count: Int!
  }
  type GoalFailure {
    reason: String!
    code: String
    failedTaskIds: [String!]!
  }
  type ResourceConsumption {
    computeCost: Decimal!
    "Agent time spent on the goal's tasks, in hours."
    agentHours: Float!
    agentMs: Float!
    "External API calls: the model calls of every task attempt and plan of the goal (their usage.calls)."
    apiCalls: Int!
    "Per kind of resource (BUDGET, API_QUOTA, COMPUTATIONAL, AGENT_CAPACITY), what the goal's tasks asked for."
    resources: [ResourceUse!]!
  }

  """
  One kind of resource the goal's tasks asked for: requests and answers, what was granted, and what
  the allocations hold now (a cancelled task's nothing; a completed task's BUDGET its cost, API_QUOTA
  the model calls it made, AGENT_CAPACITY nothing; any other what was granted).
  """
  type ResourceUse {
    kind: String!
    unit: String!
    requests: Int!
    allocated: Int!
    denied: Int!
    granted: Decimal!
    held: Decimal!
  }

  "A resource request made for one of the goal's tasks (ResourceRequested) and its answer."
  type ResourceAllocation {
    requestId: ID!
    "Null until allocated."
    allocationId: ID
    taskId: ID
    "The agent that asked, to which the resource is allocated."
    requesterId: ID!
    kind: String!
    amount: Decimal!
    "Null unless allocated."
    granted: Decimal
    unit: String!
    "REQUESTED, ALLOCATED or DENIED."
    status: String!
    reasons: [String!]!
    requestedAt: DateTime
    answeredAt: DateTime
    expiresAt: DateTime
  }

  "A ConstitutionalViolationDetected about the goal."
  type ConstitutionalViolation {
    violationId: ID!
    taskId: ID
    agentId: ID
    policyId: ID!
    policyVersion: Int!
    principle: String!
    description: String!
    severity: String!
    "BLOCKED, FLAGGED, ESCALATED or GOAL_STOPPED."
    enforcement: String!
    at: DateTime!
  }

  "Where a project stands in one of its phases, and how far the phase's tasks are."
  type PhaseStatus {
    phase: Phase!
    "PENDING, ACTIVE, COMPLETED, or FAILED / STOPPED when the project ended so in it."
    status: String!
    startedAt: DateTime
    endedAt: DateTime
    tasksTotal: Int!
    tasksCompleted: Int!
    tasksFailed: Int!
    "Share of the phase's tasks completed, 0 to 1."
    progress: Float!
  }

  "A goal, or a project (kind PROJECT) that runs through the eight SDLC phases."
  type Goal {
    id: ID!
    kind: GoalKind
    status: GoalStatus
    title: String
    description: String
    priority: Int
    topology: Topology
    domainHints: [String!]!
    constraints: [Entry!]!
    deadline: DateTime
    budget: Decimal
    currentPhase: Phase
    phases: [PhaseProgress!]!
    "Planner of the last decomposition: explicit, templates/v1, model/v1, ... (per phase in phases)."
    planner: String
    "Every planning attempt (model planner), in log order; empty for a goal planned without a model."
    plans: [PlanAttempt!]!
    "Tokens read by every model call of the goal: its plans and its tasks' attempts."
    tokensIn: Float!
    "Tokens written by every model call of the goal."
    tokensOut: Float!
    "Model calls of the goal (plans and task attempts)."
    modelCalls: Int!
    modelLatencyMs: Float!
    "Cost of the goal's completed task attempts that called a model (a plan or a failed attempt records no cost)."
    modelCost: Decimal!
    "The plans' model calls summed."
    planUsage: ModelUsageSum!
    "The tasks' model calls summed over every attempt."
    taskUsage: ModelUsageSum!
    result: String
    outputs: [Entry!]!
    failure: GoalFailure
    "Aggregate version: events of the goal applied to this view."
    version: Int!
    submittedAt: DateTime
    completedAt: DateTime
    taskSummary: [StatusCount!]!
    tasksTotal: Int!
    "Share of the tasks completed, 0 to 1."
    progress: Float!
    resourceConsumption: ResourceConsumption!
    openEscalations: Int!
    "The governor (sub-master in dgm) holding most of the goal's tasks; null before any is assigned."
    governorId: ID
    "Every governor (sub-master) holding tasks of the goal."
    governorIds: [ID!]!
    "Every mayor holding tasks of the goal (none in dgm)."
    mayorIds: [ID!]!
    "A project's eight phases in SDLC order, with status and task progress; empty for a goal."
    phaseProgress: [PhaseStatus!]!
    "Resource requests made for the goal's tasks, in log order."
    allocations: [ResourceAllocation!]!
    "Constitutional violations found about the goal."
    violations: [ConstitutionalViolation!]!
    "Policy decisions about the goal that denied something (PolicyEvaluated DENY)."
    policyDenials: Int!
  }

  type GoalEdge {
    cursor: String!
    node: Goal!
  }
  type GoalConnection {
    edges: [GoalEdge!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }

  input GoalFilter {
    status: GoalStatus
    topology: Topology
  }

  input TaskInput {
    id: ID!
    title: String!
    description: String
    domain: String!
    specialization: String
    phase: Phase
    dependsOn: [ID!]
    estimatedEffortMs: Int
    "How long one attempt may run before it times out (TaskTimedOut, then a retry or escalation), in milliseconds, 1 ms to 30 days; null for the worker group's limit (a Float: an Int stops at 24.8 days)."
    timeoutMs: Float
    priority: Int
    inputs: [EntryInput!]
  }

  input GoalInput {
    "Leave out to get a generated id."
    goalId: ID
    title: String!
    description: String
    "1 (lowest) to 10."
    priority: Int
    topology: Topology
    domainHints: [String!]
    constraints: [EntryInput!]
    "ISO-8601; must be in the future."
    deadline: String
    budget: Decimal
    "An explicit task DAG; leave out to let the planner decompose."
    tasks: [TaskInput!]
  }

  extend type Query {
    """
    A goal of the caller's tenant. With asOf, the goal as it stood at that time, replayed from the
    log (its tasks, their dependencies and assignees as of then too); null if not submitted yet.
    """
    goal(id: ID!, asOf: DateTime): Goal
    goals(filter: GoalFilter, first: Int = 20, after: String): GoalConnection!
    "A project (a goal of kind PROJECT); asOf as for goal."
    project(id: ID!, asOf: DateTime): Goal
    projects(filter: GoalFilter, first: Int = 20, after: String): GoalConnection!
  }

  extend type Mutation {
    submitGoal(input: GoalInput!, waitForProjection: Boolean = false): CommandReceipt!
    submitProject(input: GoalInput!, waitForProjection: Boolean = false): CommandReceipt!
    requestPhaseTransition(
      goalId: ID!
      fromPhase: Phase!
      toPhase: Phase!
      justification: String
      waitForProjection: Boolean = false
    ): CommandReceipt!
    "Stops a goal: every open task cancelled, nothing new dispatched, GoalStopped recorded."
    emergencyStop(goalId: ID!, reason: String!, waitForProjection: Boolean = false): CommandReceipt!
  }
`;

type Args = Record<string, unknown>;

// --- the log, read back for audit: time travel (asOf) and the causal trail ----------------------

/** Reads the log for audit, once per request for each distinct question. */
export interface AuditLog {
  /** The deciders' state as of `at`: of one goal (its partition only), or of everything. */
  snapshot(at: Date, goalId?: string): Promise<Snapshot>;
  /**
   * The goal's causal timeline, from the start of the log or from a time; topics by their catalog
   * names (the deployment's topic prefix taken off), as the rest of the API names them.
   */
  timeline(goalId: string, tenantId: string, from?: Date): Promise<Timeline>;
  /** Every dead letter on polity.deadletters, read from the start of the topic, in log order. */
  deadLetters(): Promise<DeadLetter[]>;
}

export interface AuditSource {
  kafka: Kafka;
  codec: Codec;
  topicPrefix?: string;
}

/** A per-request AuditLog over the gateway's Kafka client and codec. */
export function auditLog(source: AuditSource): AuditLog {
  const prefix = source.topicPrefix ? { topicPrefix: source.topicPrefix } : {};
  const snapshots = new Map<string, Promise<Snapshot>>();
  const timelines = new Map<string, Promise<Timeline>>();
  const cached = <T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> => {
    let p = map.get(key);
    if (!p) {
      p = make();
      map.set(key, p);
      // A failed read is not kept: the next resolver asking tries again.
      p.catch(() => map.delete(key));
    }
    return p;
  };
  let letters: Promise<DeadLetter[]> | undefined;
  return {
    deadLetters() {
      if (!letters) {
        letters = readDeadLetters(source);
        letters.catch(() => (letters = undefined));
      }
      return letters;
    },
    snapshot(at, goalId) {
      const whole = `${at.toISOString()}|*`;
      // A snapshot of everything answers for any one goal too.
      if (goalId !== undefined && snapshots.has(whole)) return snapshots.get(whole)!;
      return cached(snapshots, goalId === undefined ? whole : `${at.toISOString()}|${goalId}`, () =>
        snapshotAsOf({
          kafka: source.kafka,
          codec: source.codec,
          at,
          ...prefix,
          ...(goalId !== undefined ? { goalId } : {}),
        }),
      );
    },
    timeline(goalId, tenantId, from) {
      const logical = (topic: string) =>
        source.topicPrefix && topic.startsWith(source.topicPrefix) ? topic.slice(source.topicPrefix.length) : topic;
      return cached(timelines, `${tenantId}|${goalId}|${from?.toISOString() ?? ""}`, async () => {
        const t = await goalTimeline({
          kafka: source.kafka,
          codec: source.codec,
          goalId,
          tenantId,
          ...prefix,
          ...(from ? { from } : {}),
        });
        return { ...t, entries: t.entries.map((e) => ({ ...e, topic: logical(e.topic) })) };
      });
    },
  };
}

/** The dead-letter topic read from its start to the end it had when the read began. */
async function readDeadLetters(source: AuditSource): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  await scanLog(source.kafka, {
    topics: [physicalTopic(DEAD_LETTER_TOPIC, source.topicPrefix ?? "")],
    onBatch: async (records) => {
      for (const r of records) {
        try {
          const d = await source.codec.decode(r.value);
          if (d.type === "DeadLetter") out.push(d.value as unknown as DeadLetter);
        } catch {
          // a record that is no dead letter is skipped: this is a view, not a consumer
        }
      }
    },
  });
  return out;
}

/** The resolvers' context with the audit reader (gateway/server.ts adds it to every request). */
export type AuditContext = GatewayContext & { audit: AuditLog };

export function audit(ctx: GatewayContext): AuditLog {
  const log = (ctx as Partial<AuditContext>).audit;
  if (!log) throw new GatewayError("UNAVAILABLE", "this gateway was started without a log reader for audit");
  return log;
}

/**
 * A read-model document computed as of a time: the snapshot it came from rides along, hidden, so
 * the nested resolvers (a goal's tasks, a task's dependencies, an agent's superior, subordinates
 * and current tasks) answer from the same moment instead of from the live read model.
 */
export type AsOf<T> = T & { _asOf?: Snapshot };

export function stamp<T extends object>(doc: T, snapshot: Snapshot): AsOf<T> {
  // Not enumerable: it never shows in anything serialised from the document.
  return Object.defineProperty({ ...doc }, "_asOf", { value: snapshot, enumerable: false }) as AsOf<T>;
}

/** A DateTime argument checked: a real time, and for asOf not in the future. */
export function timeArg(field: string, value: unknown, { past = false } = {}): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const at = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(at.getTime())) throw invalid(field, "must be an ISO-8601 date-time, e.g. 2025-01-31T12:00:00Z");
  if (past && at.getTime() > Date.now())
    throw invalid(field, `${at.toISOString()} is in the future; ask for a time up to now`);
  return at;
}

const tasksCache = new WeakMap<Snapshot, Map<string, TaskDoc[]>>();
/** The goal's tasks as of the snapshot (computed once per snapshot and goal), stamped. */
export function tasksAt(snapshot: Snapshot, goalId: string): AsOf<TaskDoc>[] {
  let byGoal = tasksCache.get(snapshot);
  if (!byGoal) tasksCache.set(snapshot, (byGoal = new Map()));
  let tasks = byGoal.get(goalId);
  if (!tasks) byGoal.set(goalId, (tasks = tasksAsOf(snapshot, goalId).map((t) => stamp(t, snapshot))));
  return tasks;
}

const agentsCache = new WeakMap<Snapshot, Map<string, AsOf<AgentDoc>>>();
/**
 * The agents as of the snapshot by id, stamped. Empty for a snapshot of one goal (it reads no
 * agent events): callers fall back to the live read model for agents then.
 */
export function agentsAt(snapshot: Snapshot): Map<string, AsOf<AgentDoc>> {
  let agents = agentsCache.get(snapshot);
  if (!agents)
    agentsCache.set(snapshot, (agents = new Map(agentsAsOf(snapshot).map((a) => [a._id, stamp(a, snapshot)]))));
  return agents;
}

/** The goal as of `at`, under the same tenant and agent-token rules as the live one. */
export async function visibleGoalAsOf(ctx: GatewayContext, id: string, at: Date): Promise<AsOf<GoalDoc> | null> {
  const p = caller(ctx, "read");
  const snapshot = await audit(ctx).snapshot(at, id);
  const goal = goalAsOf(snapshot, id);
  if (!goal || goal.tenantId !== p.tenantId) return null;
  if (p.role === "agent") {
    const subtree = await ctx.subtree();
    if (!tasksAt(snapshot, id).some((t) => t.holders.some((h) => subtree.has(h)))) return null;
  }
  return stamp(goal, snapshot);
}

/** goal(id) and project(id): live, or as of a time. */
async function goalOrAsOf(ctx: GatewayContext, id: string, asOf: unknown): Promise<AsOf<GoalDoc> | null> {
  caller(ctx, "read");
  const at = timeArg("asOf", asOf, { past: true });
  return at ? visibleGoalAsOf(ctx, id, at) : visibleGoal(ctx, id);
}

/** The goal's governors and mayors: from the document, or for a goal as of a time from its tasks then. */
function holdersOf(g: AsOf<GoalDoc>): { governorId: string | null; governorIds: string[]; mayorIds: string[] } {
  if (!g._asOf)
    return { governorId: g.governorId ?? null, governorIds: g.governorIds ?? [], mayorIds: g.mayorIds ?? [] };
  return tierHolders(tasksAt(g._asOf, g._id));
}

/** A goal of the caller's tenant; for an agent token, only one its subtree holds a task of. */
export async function visibleGoal(ctx: GatewayContext, id: string): Promise<GoalDoc | null> {
  caller(ctx, "read");
  return ctx.viewer().goal(id);
}

async function connection(ctx: GatewayContext, kind: "GOAL" | "PROJECT", args: Args) {
  const p = caller(ctx, "read");
  if (p.role === "agent")
    throw forbidden("an agent token lists no goals; read its own work with agent(id) { tasks } or goal(id)");
  const filter = (args.filter ?? {}) as { status?: string; topology?: string };
  const page = await ctx.read.goals(
    p.tenantId,
    { ...filter, kind },
    args.first as number | undefined,
    args.after as string | undefined,
  );
  return {
    // Every edge's cursor is one `after` accepts (not only the last one).
    edges: page.items.map((node) => ({ node, cursor: goalCursor(node) })),
    pageInfo: { endCursor: page.endCursor, hasNextPage: page.hasNextPage },
    totalCount: page.totalCount,
  };
}

export const resolvers = {
  Query: {
    goal: (_: unknown, { id, asOf }: { id: string; asOf?: unknown }, ctx: GatewayContext) =>
      guarded(() => goalOrAsOf(ctx, id, asOf)),
    project: (_: unknown, { id, asOf }: { id: string; asOf?: unknown }, ctx: GatewayContext) =>
      guarded(async () => {
        const g = await goalOrAsOf(ctx, id, asOf);
        return g?.kind === "PROJECT" ? g : null;
      }),
    goals: (_: unknown, args: Args, ctx: GatewayContext) => guarded(() => connection(ctx, "GOAL", args)),
    projects: (_: unknown, args: Args, ctx: GatewayContext) => guarded(() => connection(ctx, "PROJECT", args)),
  },
  Mutation: {
    submitGoal: (_: unknown, { input, waitForProjection }: Args, ctx: GatewayContext) =>
      guarded(() => ctx.commands.submitGoal(ctx.principal, input, "GOAL", { waitForProjection: !!waitForProjection })),
    submitProject: (_: unknown, { input, waitForProjection }: Args, ctx: GatewayContext) =>
      guarded(() =>
        ctx.commands.submitGoal(ctx.principal, input, "PROJECT", { waitForProjection: !!waitForProjection }),
      ),
    requestPhaseTransition: (_: unknown, { waitForProjection, ...input }: Args, ctx: GatewayContext) =>
      guarded(() =>
        ctx.commands.requestPhaseTransition(ctx.principal, input, { waitForProjection: !!waitForProjection }),
      ),
    emergencyStop: (_: unknown, { waitForProjection, ...input }: Args, ctx: GatewayContext) =>
      guarded(() => ctx.commands.emergencyStop(ctx.principal, input, { waitForProjection: !!waitForProjection })),
  },
  Goal: {
    id: (g: GoalDoc) => g._id,
    domainHints: (g: GoalDoc) => g.domainHints ?? [],
    constraints: (g: GoalDoc) => entries(g.constraints),
    outputs: (g: GoalDoc) => entries(g.outputs),
    phases: (g: GoalDoc) => (g.phases ?? []).map((p) => ({ ...p, planner: p.planner ?? null })),
    plans: (g: GoalDoc) => g.plans ?? [],
    planUsage: (g: GoalDoc) => g.planUsage ?? noUsage(),
    taskUsage: (g: GoalDoc) => g.taskUsage ?? noTaskUsage(),
    tokensIn: (g: GoalDoc) => goalModelUsage(g).tokensIn,
    tokensOut: (g: GoalDoc) => goalModelUsage(g).tokensOut,
    modelCalls: (g: GoalDoc) => goalModelUsage(g).calls,
    modelLatencyMs: (g: GoalDoc) => goalModelUsage(g).latencyMs,
    modelCost: (g: GoalDoc) => goalModelUsage(g).cost,
    taskSummary: (g: GoalDoc) =>
      Object.entries(g.taskSummary ?? {}).map(([status, count]) => ({ status, count: count ?? 0 })),
    resourceConsumption: (g: GoalDoc) => ({
      computeCost: g.resourceConsumption?.computeCost ?? "0.0000",
      agentMs: g.resourceConsumption?.agentMs ?? 0,
      agentHours: (g.resourceConsumption?.agentMs ?? 0) / 3_600_000,
      // A goal as of a time (or a document written before these were kept) counts its own model calls.
      apiCalls: g.resourceConsumption?.apiCalls ?? goalModelUsage(g).calls,
      resources: g.resourceConsumption?.resources ?? [],
    }),
    openEscalations: (g: GoalDoc) => g.escalations?.open ?? 0,
    governorId: (g: AsOf<GoalDoc>) => holdersOf(g).governorId,
    governorIds: (g: AsOf<GoalDoc>) => holdersOf(g).governorIds,
    mayorIds: (g: AsOf<GoalDoc>) => holdersOf(g).mayorIds,
    phaseProgress: (g: AsOf<GoalDoc>) =>
      g._asOf ? (g.kind === "PROJECT" ? phaseProgressOf(g, tasksAt(g._asOf, g._id)) : []) : (g.phaseProgress ?? []),
    allocations: (g: GoalDoc) => g.allocations ?? [],
    violations: (g: GoalDoc) => g.violations ?? [],
    policyDenials: (g: GoalDoc) => g.policyDecisions?.DENY ?? 0,
  },
};
