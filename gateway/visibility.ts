/**
 * Who may see what, for GraphQL and REST alike. Tenant filtering is in the read side's queries;
 * this adds the agent-token rule: an agent sees its own subtree of agents, and only the goals that
 * subtree holds a task of. Everyone else sees every agent and every goal of their tenant.
 */
import type { AgentDoc, GoalDoc } from "../projections/mongo/state-store.js";
import type { Principal } from "./auth.js";
import type { Loaders, ReadSide } from "./read-side.js";

export class Viewer {
  private subtreeOf?: Promise<Set<string>>;

  constructor(
    readonly read: ReadSide,
    readonly principal: Principal,
    /** The request's loaders, shared with the resolvers that use them. */
    private readonly loaders: Loaders = read.loaders(principal.tenantId),
  ) {}

  get isAgent(): boolean {
    return this.principal.role === "agent";
  }

  /** For an agent token: its agent and every agent below it (once per request); empty otherwise. */
  subtree(): Promise<Set<string>> {
    const { agentId } = this.principal;
    return (this.subtreeOf ??=
      this.isAgent && agentId ? this.read.subtree(agentId) : Promise.resolve(new Set<string>()));
  }

  async goal(id: string): Promise<GoalDoc | null> {
    const goal = await this.loaders.goal.load(id);
    if (!goal || !this.isAgent) return goal;
    const subtree = await this.subtree();
    const tasks = await this.loaders.tasksByGoal.load(id);
    return tasks.some((t) => t.holders.some((h) => subtree.has(h))) ? goal : null;
  }

  async agents(agents: AgentDoc[]): Promise<AgentDoc[]> {
    if (!this.isAgent) return agents;
    const subtree = await this.subtree();
    return agents.filter((a) => subtree.has(a._id));
  }

  async agent(id: string): Promise<AgentDoc | null> {
    const a = await this.loaders.agent.load(id);
    if (!a?.tier) return null;
    return (await this.agents([a]))[0] ?? null;
  }
}
