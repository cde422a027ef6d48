/**
 * The agent directory: who exists in each topology, their tier, domain, specialization, superior
 * and capacity. Built only from agent lifecycle events (AgentRegistered, AgentTerminated, ...), so
 * every tier host, on any machine, derives the same directory from the log.
 */
import type { PolityEvent } from "../../schemas/reader.js";
import type { AgentStatus, ExecutorKind, Tier, Topology } from "../../schemas/generated/types.js";
import { concerns, ownerOf } from "./kernel/tenancy.js";

export interface AgentInfo {
  agentId: string;
  name: string;
  tier: Tier;
  topology: Topology;
  domain: string | null;
  specialization: string | null;
  superiorId: string | null;
  capacity: number;
  executor: ExecutorKind | null;
  status: AgentStatus;
  /** How often the agent heartbeats, as registered. */
  heartbeatIntervalMs: number;
  /**
   * The tenant the agent belongs to (registered by that tenant's admin), or null when it is
   * platform-wide (configured, or registered by the platform admin): see tenancy.ts. A tenant's
   * agent works only on that tenant's tasks, so no task's inputs reach another tenant's program.
   */
  ownerTenantId: string | null;
}

/** Whether `agent` may be given work of `tenantId`'s goals. */
export function servesTenant(agent: AgentInfo, tenantId: string | undefined): boolean {
  return tenantId === undefined ? agent.ownerTenantId === null : concerns(agent.ownerTenantId, tenantId);
}

/** The tiers a topology has, top first. DGM names are the aliases of the AAMAS ones. */
export const TIERS_OF: Record<Topology, readonly Tier[]> = {
  aamas: ["PRESIDENT", "GOVERNOR", "MAYOR", "WORKER"],
  dgm: ["MASTER", "SUB_MASTER", "WORKER"],
};

/**
 * The role a tier plays, whatever the topology calls it; processors are organised by role. "policy"
 * is the policy engine: no tier of the hierarchy, a SYSTEM processor (see domain/policy.ts); "health"
 * is the health monitor (domain/health.ts), another SYSTEM processor; "scaler" registers and scales
 * agents (domain/scaler.ts), a third one.
 */
export type Role = "president" | "governor" | "mayor" | "worker" | "policy" | "health" | "resources" | "scaler";

export function roleOf(tier: Tier): Role | null {
  switch (tier) {
    case "PRESIDENT":
    case "MASTER":
      return "president";
    case "GOVERNOR":
    case "SUB_MASTER":
      return "governor";
    case "MAYOR":
      return "mayor";
    case "WORKER":
      return "worker";
    default:
      return null;
  }
}

/**
 * A worker group: the workers of one topology, domain and specialization (the id ScaleAgents is
 * keyed by, as the gateway writes it).
 */
export function groupKey(topology: Topology, domain: string | null, specialization: string | null): string {
  return `${topology}/WORKER/${domain ?? "*"}/${specialization ?? "*"}`;
}

/** What an agent's latest heartbeat reported: the tasks it holds. */
export interface ReportedLoad {
  held: number;
  inFlight: string[];
  at: Date;
}

const AVAILABLE: ReadonlySet<AgentStatus> = new Set(["STARTING", "IDLE", "BUSY", "OVERLOADED"]);

export class AgentDirectory {
  private readonly agents = new Map<string, AgentInfo>();
  /** RegisterAgent and ScaleAgents commands answered (the commandId of AgentRegistered and AgentsScaled). */
  private readonly answered = new Set<string>();
  /** When each worker group was last scaled (AgentsScaled's occurredAt), for the autoscaler's cool-down. */
  private readonly scaledAt = new Map<string, Date>();
  /** Each agent's latest heartbeat (the autoscaler's load, the scaler's choice of whom to retire). */
  private readonly loads = new Map<string, ReportedLoad>();

  /** Applies an agent lifecycle event; other events are ignored. Applying one twice changes nothing. */
  apply(event: PolityEvent): void {
    switch (event.type) {
      case "AgentRegistered": {
        const e = event.value;
        if (e.commandId) this.answered.add(e.commandId);
        this.agents.set(e.agentId, {
          agentId: e.agentId,
          name: e.name,
          tier: e.tier,
          topology: e.topology,
          domain: e.domain,
          specialization: e.specialization,
          superiorId: e.superiorId,
          capacity: e.capacity,
          executor: e.executor,
          status: "IDLE",
          heartbeatIntervalMs: e.heartbeatIntervalMs,
          ownerTenantId: ownerOf(e.envelope.tenantId),
        });
        break;
      }
      case "AgentTerminated":
        this.setStatus(event.value.agentId, "TERMINATED");
        break;
      case "AgentFailed":
        this.setStatus(event.value.agentId, "FAILED");
        break;
      case "AgentRecovered":
        this.setStatus(event.value.agentId, "IDLE");
        break;
      case "AgentsScaled": {
        const e = event.value;
        if (e.commandId) this.answered.add(e.commandId);
        const key = groupKey(e.topology, e.domain, e.specialization);
        const last = this.scaledAt.get(key);
        if (!last || e.envelope.occurredAt > last) this.scaledAt.set(key, e.envelope.occurredAt);
        break;
      }
      case "AgentHeartbeat": {
        const e = event.value;
        if (e.tier === "SYSTEM") break;
        const last = this.loads.get(e.agentId);
        if (last && e.envelope.occurredAt <= last.at) break;
        this.loads.set(e.agentId, {
          held: e.inFlightTasks.length,
          inFlight: e.inFlightTasks,
          at: e.envelope.occurredAt,
        });
        break;
      }
      default:
        break;
    }
  }

  private setStatus(agentId: string, status: AgentStatus): void {
    const agent = this.agents.get(agentId);
    if (agent) this.agents.set(agentId, { ...agent, status });
  }

  get(agentId: string): AgentInfo | undefined {
    return this.agents.get(agentId);
  }

  /** Whether a RegisterAgent or ScaleAgents command was answered. */
  hasAnswered(commandId: string): boolean {
    return this.answered.has(commandId);
  }

  /** When a worker group (groupKey) was last scaled; null if never. */
  lastScaledAt(group: string): Date | null {
    return this.scaledAt.get(group) ?? null;
  }

  /** What an agent's latest heartbeat reported; null before its first. */
  reportedLoad(agentId: string): ReportedLoad | null {
    return this.loads.get(agentId) ?? null;
  }

  all(): AgentInfo[] {
    return [...this.agents.values()];
  }

  get size(): number {
    return this.agents.size;
  }

  isAvailable(agent: AgentInfo): boolean {
    return AVAILABLE.has(agent.status);
  }

  /** The president (aamas) or master (dgm) of a topology. */
  top(topology: Topology): AgentInfo | undefined {
    return this.all().find((a) => a.topology === topology && roleOf(a.tier) === "president" && this.isAvailable(a));
  }

  /** The governor (aamas) or sub-master (dgm) that owns a domain. */
  governorOf(topology: Topology, domain: string): AgentInfo | undefined {
    return this.all().find(
      (a) => a.topology === topology && roleOf(a.tier) === "governor" && a.domain === domain && this.isAvailable(a),
    );
  }

  subordinates(agentId: string): AgentInfo[] {
    return this.all().filter((a) => a.superiorId === agentId && this.isAvailable(a));
  }

  /** Workers below an agent (directly, or through its mayors) that can do a specialization; null means any. */
  workersUnder(agentId: string, specialization: string | null): AgentInfo[] {
    const out: AgentInfo[] = [];
    for (const sub of this.subordinates(agentId)) {
      if (sub.tier === "WORKER") {
        if (specialization === null || sub.specialization === specialization) out.push(sub);
      } else {
        out.push(...this.workersUnder(sub.agentId, specialization));
      }
    }
    return out;
  }

  domainsOf(topology: Topology): string[] {
    const domains = new Set<string>();
    for (const a of this.all())
      if (a.topology === topology && roleOf(a.tier) === "governor" && a.domain) domains.add(a.domain);
    return [...domains].sort();
  }

  /** Specializations available in a domain, sorted, so planners derive the same tasks everywhere. */
  specializationsOf(topology: Topology, domain: string): string[] {
    const governor = this.governorOf(topology, domain);
    if (!governor) return [];
    const specs = new Set<string>();
    for (const w of this.workersUnder(governor.agentId, null)) if (w.specialization) specs.add(w.specialization);
    return [...specs].sort();
  }
}
