/**
 * Who may see what, for GraphQL and REST alike. Goals, tasks and escalations are filtered by tenant
 * in the read side's queries. Agents and policies belong to a tenant or to the platform
 * (processors/domain/kernel/tenancy.ts): a tenant sees its own and the platform-wide ones, the platform
 * admin sees all (auth.ts `maySee`); that is decided here, for every list and every lookup. On top,
 * the agent-token rule: an agent sees its own subtree of agents, and only the goals that subtree
 * holds a task of.
 */
import type { AgentDoc, GoalDoc, PolicyDoc } from "../projections/mongo/state-store.js";
import { maySee, type Principal } from "./auth.js";
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
    const owned = agents.filter((a) => maySee(this.principal, a.tenantId));
    if (!this.isAgent) return owned;
    const subtree = await this.subtree();
    return owned.filter((a) => subtree.has(a._id));
  }

  async agent(id: string): Promise<AgentDoc | null> {
    const a = await this.loaders.agent.load(id);
    if (!a?.tier) return null;
    return (await this.agents([a]))[0] ?? null;
  }

  /** The policies the caller sees: its tenant's and the platform-wide ones (all for the platform admin). */
  async policies(filter: { category?: string | null; status?: string | null }): Promise<PolicyDoc[]> {
    return (await this.read.policies(filter)).filter((p) => maySee(this.principal, p.tenantId));
  }

  async policy(id: string): Promise<PolicyDoc | null> {
    return (await this.policies({})).find((p) => p.policyId === id) ?? null;
  }
}
