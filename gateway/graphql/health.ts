/** System health: the SystemHealth view of the DGM design, from the read models and the probes. */
import type { HealthChecks } from "../health.js";
import type { ReadSide } from "../read-side.js";
import { caller, guarded, once, type GatewayContext } from "./context.js";

export const typeDefs = /* GraphQL */ `
  type ComponentHealth {
    name: String!
    up: Boolean!
    latencyMs: Int!
    detail: String!
  }
  type ProjectionLag {
    projection: String!
    lag: Int!
  }
  type SystemHealth {
    "HEALTHY, DEGRADED (an agent failed or a read model lags) or CRITICAL (a server is down)."
    status: String!
    checkedAt: DateTime!
    components: [ComponentHealth!]!
    projections: [ProjectionLag!]!
    totalAgents: Int!
    activeAgents: Int!
    failedAgents: Int!
    agentsByStatus: [StatusCount!]!
    "Tasks of the caller's tenant waiting for a worker (PENDING, READY, ASSIGNED)."
    taskQueueLength: Int!
    runningTasks: Int!
    completedTasks: Int!
    failedTasks: Int!
    runningGoals: Int!
    problems: [String!]!
  }

  extend type Query {
    systemHealth: SystemHealth!
  }
`;

/**
 * The SystemHealth numbers for a tenant, from the probes and the read models. GraphQL and REST
 * (GET /api/v1/system/health) both answer with this, so they cannot disagree.
 */
export async function systemHealth(deps: { health: HealthChecks; read: ReadSide }, tenantId: string) {
  const [report, counts] = await Promise.all([deps.health.report(), deps.read.counts(tenantId)]);
  const sum = (m: Record<string, number>, keys: string[]) => keys.reduce((n, k) => n + (m[k] ?? 0), 0);
  const totalAgents = Object.values(counts.agentsByStatus).reduce((a, b) => a + b, 0);
  const failedAgents = sum(counts.agentsByStatus, ["FAILED", "UNRESPONSIVE"]);
  const critical = report.components.some((c) => !c.up);
  return {
    status: critical ? "CRITICAL" : failedAgents > 0 || !report.ready ? "DEGRADED" : "HEALTHY",
    checkedAt: report.checkedAt,
    components: report.components,
    projections: report.projections,
    totalAgents,
    activeAgents: totalAgents - failedAgents - sum(counts.agentsByStatus, ["TERMINATED", "RETIRED"]),
    failedAgents,
    agentsByStatus: Object.entries(counts.agentsByStatus).map(([status, count]) => ({ status, count })),
    taskQueueLength: sum(counts.tasksByStatus, ["PENDING", "READY", "ASSIGNED"]),
    runningTasks: sum(counts.tasksByStatus, ["ACCEPTED", "RUNNING"]),
    completedTasks: sum(counts.tasksByStatus, ["COMPLETED"]),
    failedTasks: sum(counts.tasksByStatus, ["FAILED", "TIMED_OUT"]),
    runningGoals: sum(counts.goalsByStatus, ["SUBMITTED", "VALIDATED", "DECOMPOSED", "RUNNING"]),
    problems: report.problems,
  };
}

export type SystemHealthView = Awaited<ReturnType<typeof systemHealth>>;

/** The DGM design's health words for this API's statuses. */
export const DESIGN_HEALTH_STATUS = { HEALTHY: "healthy", DEGRADED: "degraded", CRITICAL: "unhealthy" } as const;

/**
 * The same numbers in the DGM design's SystemHealth shape (snake_case, GET /api/v1/health/system):
 * status healthy/degraded/unhealthy, agent and task counts, each server's status and the read
 * models' lag. `pending_tasks` is taskQueueLength: tasks waiting for a worker.
 */
export function designSystemHealth(h: SystemHealthView) {
  const lag = Object.fromEntries(h.projections.map((p) => [p.projection, p.lag]));
  return {
    status: DESIGN_HEALTH_STATUS[h.status as keyof typeof DESIGN_HEALTH_STATUS] ?? "unhealthy",
    total_agents: h.totalAgents,
    active_agents: h.activeAgents,
    failed_agents: h.failedAgents,
    pending_tasks: h.taskQueueLength,
    running_tasks: h.runningTasks,
    completed_tasks: h.completedTasks,
    failed_tasks: h.failedTasks,
    running_goals: h.runningGoals,
    components: Object.fromEntries(
      h.components.map((c) => [c.name, { status: c.up ? "up" : "down", latency_ms: c.latencyMs, detail: c.detail }]),
    ),
    projection_lag: {
      analytics: lag.analytics ?? null,
      state: lag.state ?? null,
      total: h.projections.reduce((n, p) => n + p.lag, 0),
    },
    problems: h.problems,
    timestamp: h.checkedAt.toISOString(),
  };
}

export const resolvers = {
  Query: {
    // Once per request: aliases of systemHealth share one probe of the servers and one count.
    systemHealth: (_: unknown, __: unknown, ctx: GatewayContext) => {
      const tenantId = caller(ctx, "read").tenantId;
      return guarded(() => once(ctx, `systemHealth:${tenantId}`, () => systemHealth(ctx, tenantId)));
    },
  },
};
