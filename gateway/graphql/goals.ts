import type { GoalDoc } from "../../projections/mongo/state-store.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { entries } from "./common.js";
import { forbidden } from "../errors.js";
import { goalCursor } from "../read-side.js";

export const typeDefs = /* GraphQL */ `
  enum GoalKind {
    GOAL
    PROJECT
  }
  enum GoalStatus {
    SUBMITTED
    VALIDATED
    REJECTED
    DECOMPOSED
    RUNNING
    COMPLETED
    FAILED
    STOPPED
  }
  enum Phase {
    INITIATION
    FEASIBILITY
    REQUIREMENTS
    DESIGN
    DEVELOPMENT
    QA
    DEPLOYMENT
    LAUNCH
  }
  enum Topology {
    aamas
    dgm
  }

  type PhaseProgress {
    phase: Phase!
    startedAt: DateTime!
    endedAt: DateTime
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
    planner: String
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
    goal(id: ID!): Goal
    goals(filter: GoalFilter, first: Int = 20, after: String): GoalConnection!
    project(id: ID!): Goal
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
    goal: (_: unknown, { id }: { id: string }, ctx: GatewayContext) => guarded(() => visibleGoal(ctx, id)),
    project: (_: unknown, { id }: { id: string }, ctx: GatewayContext) =>
      guarded(async () => {
        const g = await visibleGoal(ctx, id);
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
    phases: (g: GoalDoc) => g.phases ?? [],
    taskSummary: (g: GoalDoc) =>
      Object.entries(g.taskSummary ?? {}).map(([status, count]) => ({ status, count: count ?? 0 })),
    resourceConsumption: (g: GoalDoc) => ({
      computeCost: g.resourceConsumption?.computeCost ?? "0.0000",
      agentMs: g.resourceConsumption?.agentMs ?? 0,
      agentHours: (g.resourceConsumption?.agentMs ?? 0) / 3_600_000,
    }),
    openEscalations: (g: GoalDoc) => g.escalations?.open ?? 0,
  },
};
