import { goalsOf, latestPhase, phaseTag, type AgentDoc } from "../../projections/mongo/state-store.js";
import { formatCost } from "../../processors/domain/kernel/costs.js";
import type { Phase } from "../../schemas/generated/types.js";
import { forbidden } from "../errors.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { entries } from "./common.js";
import { agentsAt, audit, tasksAt, timeArg, type AsOf } from "./goals.js";
import { graphqlEnum } from "../contract/enums.js";

export const typeDefs = /* GraphQL */ `
  ${graphqlEnum("Tier")}

  type AgentPerformance {
    tasksCompleted: Int!
    tasksFailed: Int!
    avgCompletionMs: Float
    "Completed / (completed + failed); null before the first result."
    successRate: Float
  }

  "What an agent was allocated of one kind of resource: every ResourceAllocated naming it, summed (all tenants, like performance)."
  type AgentResourceAllocation {
    "BUDGET, API_QUOTA, COMPUTATIONAL or AGENT_CAPACITY."
    kind: String!
    unit: String!
    allocations: Int!
    granted: Decimal!
  }

  type Agent {
    id: ID!
    "The owning tenant (it registered or scaled the agent); null for a platform-wide agent."
    tenantId: String
    name: String
    tier: Tier
    topology: Topology
    domain: String
    specialization: String
    status: String
    capacity: Int
    "Heartbeat load: tasks held divided by capacity (0.0 idle, 1.0 full, above 1.0 overloaded)."
    load: Float
    executor: String
    labels: [Entry!]!
    superior: Agent
    subordinates: [Agent!]!
    "Open tasks the agent holds, of the caller's tenant."
    currentTasks: [Task!]!
    performance: AgentPerformance!
    "The latest SDLC phase, of the project tasks of the caller's tenant it holds; null when it holds none."
    currentPhase: Phase
    "Goals (projects) of the caller's tenant it holds open tasks of."
    assignedProjects: [ID!]!
    "What it was allocated, per kind of resource (from ResourceAllocated)."
    resourceAllocation: [AgentResourceAllocation!]!
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
    """
    An agent. With asOf, the agent as it stood at that time, replayed from the log: its status,
    superior, subordinates and current tasks as of then (performance and heartbeat times are not
    kept by the replay: zero and null).
    """
    agent(id: ID!, asOf: DateTime): Agent
    agents(filter: AgentFilter): [Agent!]!
    "The hierarchy of a topology as a tree, from its top agent down; with asOf, as it stood then."
    hierarchy(topology: Topology = aamas, asOf: DateTime): [HierarchyNode!]!
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

/** Agents the caller sees (visibility.ts): its tenant's and the platform-wide ones; an agent token only its subtree. */
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

/**
 * The open tasks an agent holds that the caller may see, as `goalId/taskId` keys with their phase:
 * of the caller's tenant only, and for an agent token only within its subtree (as currentTasks).
 * As of a time, from the tasks as they were then; live, from the phases kept beside currentTasks.
 */
async function heldTasks(a: AsOf<AgentDoc>, ctx: GatewayContext): Promise<{ key: string; phase: Phase | null }[]> {
  const p = caller(ctx, "read");
  if (p.role === "agent" && !(await ctx.subtree()).has(a._id))
    throw forbidden("an agent token reads the tasks of its own subtree only");
  const snapshot = a._asOf;
  const phases = new Map(
    (a.currentTaskPhases ?? []).map((tag) => [tag.slice(0, tag.lastIndexOf("@")), tag.slice(tag.lastIndexOf("@") + 1)]),
  );
  const out: { key: string; phase: Phase | null }[] = [];
  for (const key of [...(a.currentTasks ?? [])].sort()) {
    const slash = key.indexOf("/");
    const goalId = key.slice(0, slash);
    if (snapshot) {
      if (snapshot.state.goals.get(goalId)?.tenantId !== p.tenantId) continue;
      const task = tasksAt(snapshot, goalId).find((t) => t.taskId === key.slice(slash + 1));
      out.push({ key, phase: task?.phase ?? null });
    } else {
      // The goal loader filters by tenant: another tenant's work stays invisible.
      if (!(await ctx.loaders().goal.load(goalId))) continue;
      out.push({ key, phase: (phases.get(key) as Phase | undefined) ?? null });
    }
  }
  return out;
}

/** Every agent as of `at` (the whole log replayed up to then), by id. */
async function agentsAsOfTime(ctx: GatewayContext, asOf: unknown): Promise<Map<string, AsOf<AgentDoc>> | null> {
  caller(ctx, "read");
  const at = timeArg("asOf", asOf, { past: true });
  return at ? agentsAt(await audit(ctx).snapshot(at)) : null;
}

export const resolvers = {
  Query: {
    agent: (_: unknown, { id, asOf }: { id: string; asOf?: unknown }, ctx: GatewayContext) =>
      guarded(async () => {
        const then = await agentsAsOfTime(ctx, asOf);
        const a = then ? (then.get(id) ?? null) : await ctx.loaders().agent.load(id);
        return a?.tier ? ((await visible(ctx, [a]))[0] ?? null) : null;
      }),
    agents: (_: unknown, { filter }: { filter?: Record<string, string> }, ctx: GatewayContext) =>
      guarded(async () => visible(ctx, await ctx.read.agents(filter ?? {}))),
    hierarchy: (_: unknown, { topology, asOf }: { topology: string; asOf?: unknown }, ctx: GatewayContext) =>
      guarded(async () => {
        const then = await agentsAsOfTime(ctx, asOf);
        const all = await visible(
          ctx,
          then
            ? [...then.values()].filter((a) => a.topology === topology).sort((x, y) => (x._id < y._id ? -1 : 1))
            : await ctx.read.agents({ topology }),
        );
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
    superior: async (a: AsOf<AgentDoc>, _: unknown, ctx: GatewayContext) => {
      if (!a.superiorId) return null;
      const s = a._asOf ? (agentsAt(a._asOf).get(a.superiorId) ?? null) : await ctx.loaders().agent.load(a.superiorId);
      return s ? ((await visible(ctx, [s]))[0] ?? null) : null;
    },
    subordinates: async (a: AsOf<AgentDoc>, _: unknown, ctx: GatewayContext) =>
      visible(
        ctx,
        a._asOf
          ? [...agentsAt(a._asOf).values()]
              .filter((s) => s.superiorId === a._id)
              .sort((x, y) => (x._id < y._id ? -1 : 1))
          : await ctx.loaders().subordinates.load(a._id),
      ),
    currentTasks: async (a: AsOf<AgentDoc>, _: unknown, ctx: GatewayContext) => {
      const p = caller(ctx, "read");
      if (p.role === "agent" && !(await ctx.subtree()).has(a._id))
        throw forbidden("an agent token reads the tasks of its own subtree only");
      const snapshot = a._asOf;
      if (snapshot) {
        // As of a time: the tasks it held then, as they were then, of the caller's tenant only.
        const then = [];
        for (const key of [...(a.currentTasks ?? [])].sort()) {
          const slash = key.indexOf("/");
          const goalId = key.slice(0, slash);
          if (snapshot.state.goals.get(goalId)?.tenantId !== p.tenantId) continue;
          const task = tasksAt(snapshot, goalId).find((t) => t.taskId === key.slice(slash + 1));
          if (task) then.push(task);
        }
        return then;
      }
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
    currentPhase: async (a: AsOf<AgentDoc>, _: unknown, ctx: GatewayContext) =>
      latestPhase((await heldTasks(a, ctx)).flatMap(({ key, phase }) => (phase ? [phaseTag(key, phase)] : []))),
    assignedProjects: async (a: AsOf<AgentDoc>, _: unknown, ctx: GatewayContext) =>
      goalsOf((await heldTasks(a, ctx)).map(({ key }) => key)),
    resourceAllocation: (a: AgentDoc) =>
      Object.entries(a.resourceAllocation ?? {})
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([kind, t]) => ({
          kind,
          unit: t.unit,
          allocations: t.allocations,
          granted: t.granted ?? formatCost(BigInt(t.grantedTenThousandths ?? 0)),
        })),
  },
};
