import type { AgentDoc } from "../../projections/mongo/state-store.js";
import { forbidden } from "../errors.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { entries } from "./common.js";

export const typeDefs = /* GraphQL */ `
  enum Tier {
    PRESIDENT
    GOVERNOR
    MAYOR
    MASTER
    SUB_MASTER
    WORKER
  }

  type AgentPerformance {
    tasksCompleted: Int!
    tasksFailed: Int!
    avgCompletionMs: Float
    "Completed / (completed + failed); null before the first result."
    successRate: Float
  }

  type Agent {
    id: ID!
    name: String
    tier: Tier
    topology: Topology
    domain: String
    specialization: String
    status: String
    capacity: Int
    load: Int
    executor: String
    labels: [Entry!]!
    superior: Agent
    subordinates: [Agent!]!
    "Open tasks the agent holds, of the caller's tenant."
    currentTasks: [Task!]!
    performance: AgentPerformance!
    registeredAt: DateTime
    lastHeartbeat: DateTime
    heartbeatIntervalMs: Int
  }

  "One agent in the hierarchy with the agents below it."
  type HierarchyNode {
    agent: Agent!
    depth: Int!
    children: [HierarchyNode!]!
  }

  input AgentFilter {
    tier: Tier
    domain: String
    status: String
    topology: Topology
  }

  input RegisterAgentInput {
    agentId: ID!
    name: String
    tier: Tier!
    topology: Topology
    domain: String
    specialization: String
    superiorId: ID
    capacity: Int
    executor: String
    labels: [EntryInput!]
    heartbeatIntervalMs: Int
  }

  extend type Query {
    agent(id: ID!): Agent
    agents(filter: AgentFilter): [Agent!]!
    "The hierarchy of a topology as a tree, from its top agent down."
    hierarchy(topology: Topology = aamas): [HierarchyNode!]!
  }

  extend type Mutation {
    registerAgent(input: RegisterAgentInput!, waitForProjection: Boolean = false): CommandReceipt!
    "Registers or retires worker agents until the tier (and domain) has targetCount of them."
    scaleAgents(
      tier: Tier!
      topology: Topology
      domain: String
      specialization: String
      targetCount: Int!
      reason: String
    ): CommandReceipt!
  }
`;

/** Agents an agent token may see: its subtree; everyone else sees all agents. */
async function visible(ctx: GatewayContext, agents: AgentDoc[]): Promise<AgentDoc[]> {
  caller(ctx, "read");
  return ctx.viewer().agents(agents);
}

function tree(all: AgentDoc[], roots: AgentDoc[], depth = 0): unknown[] {
  return roots.map((agent) => ({
    agent,
    depth,
    children: tree(
      all,
      all.filter((a) => a.superiorId === agent._id),
      depth + 1,
    ),
  }));
}

export const resolvers = {
  Query: {
    agent: (_: unknown, { id }: { id: string }, ctx: GatewayContext) =>
      guarded(async () => {
        const a = await ctx.loaders().agent.load(id);
        return a?.tier ? ((await visible(ctx, [a]))[0] ?? null) : null;
      }),
    agents: (_: unknown, { filter }: { filter?: Record<string, string> }, ctx: GatewayContext) =>
      guarded(async () => visible(ctx, await ctx.read.agents(filter ?? {}))),
    hierarchy: (_: unknown, { topology }: { topology: string }, ctx: GatewayContext) =>
      guarded(async () => {
        const all = await visible(ctx, await ctx.read.agents({ topology }));
        const ids = new Set(all.map((a) => a._id));
        return tree(
          all,
          all.filter((a) => !a.superiorId || !ids.has(a.superiorId)),
        );
      }),
  },
  Mutation: {
    registerAgent: (_: unknown, { input, waitForProjection }: Record<string, unknown>, ctx: GatewayContext) =>
      guarded(() => ctx.commands.registerAgent(ctx.principal, input, { waitForProjection: !!waitForProjection })),
    scaleAgents: (_: unknown, args: Record<string, unknown>, ctx: GatewayContext) =>
      guarded(() => ctx.commands.scaleAgents(ctx.principal, args)),
  },
  Agent: {
    id: (a: AgentDoc) => a._id,
    labels: (a: AgentDoc) => entries(a.labels),
    superior: async (a: AgentDoc, _: unknown, ctx: GatewayContext) => {
      if (!a.superiorId) return null;
      const s = await ctx.loaders().agent.load(a.superiorId);
      return s ? ((await visible(ctx, [s]))[0] ?? null) : null;
    },
    subordinates: async (a: AgentDoc, _: unknown, ctx: GatewayContext) =>
      visible(ctx, await ctx.loaders().subordinates.load(a._id)),
    currentTasks: async (a: AgentDoc, _: unknown, ctx: GatewayContext) => {
      const p = caller(ctx, "read");
      if (p.role === "agent" && !(await ctx.subtree()).has(a._id))
        throw forbidden("an agent token reads the tasks of its own subtree only");
      const out = [];
      for (const key of a.currentTasks ?? []) {
        const slash = key.indexOf("/");
        const goalId = key.slice(0, slash);
        // The goal loader filters by tenant: another tenant's tasks stay invisible.
        if (!(await ctx.loaders().goal.load(goalId))) continue;
        const task = (await ctx.loaders().tasksByGoal.load(goalId)).find((t) => t.taskId === key.slice(slash + 1));
        if (task) out.push(task);
      }
      return out;
    },
    performance: (a: AgentDoc) => a.performance,
  },
};
