/**
 * The gateway's Prometheus metrics, with the names the DGM design's alert rules use. Values that
 * describe the platform (queue length, completions, failures, performance, violations, running
 * goals' age, agents by status, model tokens) are read from the read models at scrape time, so
 * every gateway instance reports the same platform-wide figures (the rules take the max over
 * instances); request counts and latencies are observed here. The processors' own metrics
 * (liveness, lag, heartbeats, CPU and memory) are in processors/host/metrics.ts.
 */
import type { NextFunction, Request, Response } from "express";
import { Counter, Gauge, Histogram } from "prom-client";
import { guarded, registry } from "../lib/metrics.js";
import type { LiveFeed } from "./live.js";
import type { ReadSide } from "./read-side.js";

const requests = new Counter({
  name: "polity_gateway_requests_total",
  help: "HTTP requests served by the gateway, by route family and status",
  labelNames: ["route", "status"],
  registers: [registry],
});
const latency = new Histogram({
  name: "polity_gateway_request_duration_seconds",
  help: "Time to answer an HTTP request, by route family",
  labelNames: ["route"],
  buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

function family(path: string): string {
  if (path.startsWith("/graphql")) return "graphql";
  if (path.startsWith("/api/v1/")) return `rest:${path.split("/")[3] ?? ""}`;
  return path.split("/")[1] || "root";
}

export function observeRequest(req: Request, res: Response, next: NextFunction): void {
  const end = latency.startTimer({ route: family(req.path) });
  res.on("finish", () => {
    end();
    requests.inc({ route: family(req.path), status: String(res.statusCode) });
  });
  next();
}

let sources: { read: ReadSide; live: LiveFeed } | null = null;

/** Points the scrape-time metrics at this gateway's read side (the last gateway created wins). */
export function registerGatewayMetrics(s: { read: ReadSide; live: LiveFeed }): void {
  sources = s;
  agentsRead = null;
}

interface AgentRow {
  _id: string;
  tier: string | null;
  status?: string | null;
  performance?: { tasksCompleted: number; tasksFailed: number; successRate: number | null };
}

/** One read of the agents per scrape: the gauges below all ask within the same moment. */
let agentsRead: { at: number; rows: Promise<AgentRow[]> } | null = null;

async function agents(): Promise<AgentRow[]> {
  if (!sources) return [];
  const now = Date.now();
  if (!agentsRead || now - agentsRead.at > 1_000) {
    const rows = sources.read.db
      .collection<AgentRow>(sources.read.names.agents)
      .find({ tier: { $ne: null } }, { projection: { _id: 1, tier: 1, status: 1, performance: 1 } })
      .toArray();
    agentsRead = { at: now, rows };
    rows.catch(() => {
      if (agentsRead?.rows === rows) agentsRead = null;
    });
  }
  return agentsRead.rows;
}

new Gauge({
  name: "task_queue_length",
  help: "Tasks waiting for a worker (PENDING, READY or ASSIGNED), all tenants",
  registers: [registry],
  async collect() {
    if (!sources) return;
    const tasks = sources.read.db.collection(sources.read.names.tasks);
    await guarded("task_queue_length", async () => {
      // One equality count per status: FerretDB evaluates $in by scanning (projections/mongo/find-each.ts).
      const counts = await Promise.all(
        ["PENDING", "READY", "ASSIGNED"].map((status) => tasks.countDocuments({ status })),
      );
      this.set(counts.reduce((a, b) => a + b, 0));
    });
  },
});

new Counter({
  name: "task_completions_total",
  help: "Tasks completed, by the tier of the agent that completed them",
  labelNames: ["tier"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("task_completions_total", async () => {
      const byTier = new Map<string, number>();
      for (const a of await agents())
        byTier.set(a.tier ?? "UNKNOWN", (byTier.get(a.tier ?? "UNKNOWN") ?? 0) + (a.performance?.tasksCompleted ?? 0));
      for (const [tier, n] of byTier) this.inc({ tier }, n);
    });
  },
});

new Counter({
  name: "worker_agent_task_failures_total",
  help: "Task attempts that failed, per worker agent",
  labelNames: ["agent_id"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("worker_agent_task_failures_total", async () => {
      for (const a of await agents())
        if (a.tier === "WORKER") this.inc({ agent_id: a._id }, a.performance?.tasksFailed ?? 0);
    });
  },
});

new Gauge({
  name: "agent_performance_score",
  help: "Success rate of an agent's task attempts, 0 to 1 (absent before its first result)",
  labelNames: ["agent_id", "tier"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("agent_performance_score", async () => {
      for (const a of await agents())
        if (a.performance?.successRate !== null && a.performance?.successRate !== undefined)
          this.set({ agent_id: a._id, tier: a.tier ?? "UNKNOWN" }, a.performance.successRate);
    });
  },
});

new Counter({
  name: "constitutional_violations_total",
  help: "ConstitutionalViolationDetected events in the log (analytics model)",
  registers: [registry],
  async collect() {
    this.reset();
    if (!sources) return;
    const { pool, analyticsSchema } = sources.read;
    await guarded("constitutional_violations_total", async () => {
      const { rows } = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${analyticsSchema}".events WHERE type = 'ConstitutionalViolationDetected'`,
      );
      this.inc(Number(rows[0]?.n ?? 0));
    });
  },
});

new Gauge({
  name: "polity_gateway_subscribers",
  help: "Live GraphQL subscriptions open on this gateway",
  registers: [registry],
  collect() {
    this.set(sources?.live.subscriberCount ?? 0);
  },
});

new Gauge({
  name: "polity_agents",
  help: "Agents in the state read model by tier and status (IDLE, BUSY, OVERLOADED, FAILED, TERMINATED, ...), all tenants",
  labelNames: ["tier", "status"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("polity_agents", async () => {
      const counts = new Map<string, { tier: string; status: string; n: number }>();
      for (const a of await agents()) {
        const tier = a.tier ?? "UNKNOWN";
        const status = a.status ?? "UNKNOWN";
        const key = `${tier}/${status}`;
        const c = counts.get(key) ?? { tier, status, n: 0 };
        c.n++;
        counts.set(key, c);
      }
      for (const { tier, status, n } of counts.values()) this.set({ tier, status }, n);
    });
  },
});

/** Open goals reported one by one, oldest first: a bound on the series a backlog can create. */
const RUNNING_GOALS_REPORTED = 500;

new Gauge({
  name: "goal_execution_time_hours",
  help: `Hours since a goal still open (submitted, validated, decomposed or running) was submitted, per goal (analytics model); the ${RUNNING_GOALS_REPORTED} oldest`,
  labelNames: ["goal_id", "tenant_id", "topology"],
  registers: [registry],
  async collect() {
    this.reset();
    if (!sources) return;
    const { pool, analyticsSchema } = sources.read;
    await guarded("goal_execution_time_hours", async () => {
      const { rows } = await pool.query<{ goal_id: string; tenant_id: string; topology: string | null; hours: number }>(
        `SELECT goal_id, tenant_id, topology, extract(epoch FROM now() - submitted_at)::float8 / 3600 AS hours
           FROM "${analyticsSchema}".goals
          WHERE status IN ('SUBMITTED', 'VALIDATED', 'DECOMPOSED', 'RUNNING') AND submitted_at IS NOT NULL
          ORDER BY submitted_at LIMIT ${RUNNING_GOALS_REPORTED}`,
      );
      for (const r of rows)
        this.set(
          { goal_id: r.goal_id, tenant_id: r.tenant_id, topology: r.topology ?? "" },
          Math.max(0, Number(r.hours)),
        );
    });
  },
});

const GOAL_STATUSES = ["SUBMITTED", "VALIDATED", "REJECTED", "DECOMPOSED", "RUNNING", "COMPLETED", "FAILED", "STOPPED"];

new Gauge({
  name: "polity_goals",
  help: "Goals in the analytics model by status, all tenants",
  labelNames: ["status"],
  registers: [registry],
  async collect() {
    this.reset();
    if (!sources) return;
    const { pool, analyticsSchema } = sources.read;
    await guarded("polity_goals", async () => {
      const { rows } = await pool.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM "${analyticsSchema}".goals GROUP BY status`,
      );
      for (const status of GOAL_STATUSES) this.set({ status }, 0);
      for (const r of rows) this.set({ status: r.status }, Number(r.n));
    });
  },
});

new Counter({
  name: "constitutional_validations_total",
  help: "Constitutional checks of submitted goals (PolicyEvaluated of category CONSTITUTIONAL in the analytics model), by decision",
  labelNames: ["decision"],
  registers: [registry],
  async collect() {
    this.reset();
    if (!sources) return;
    const { pool, analyticsSchema } = sources.read;
    await guarded("constitutional_validations_total", async () => {
      const { rows } = await pool.query<{ decision: string; n: string }>(
        `SELECT payload ->> 'decision' AS decision, count(*) AS n FROM "${analyticsSchema}".events
          WHERE type = 'PolicyEvaluated' AND payload ->> 'category' = 'CONSTITUTIONAL'
          GROUP BY 1`,
      );
      for (const decision of ["ALLOW", "WARN", "DENY"]) this.inc({ decision }, 0);
      for (const r of rows) this.inc({ decision: r.decision }, Number(r.n));
    });
  },
});

interface ModelRow {
  model: string;
  calls: string;
  tokens_in: string;
  tokens_out: string;
}

async function modelUsage(): Promise<ModelRow[]> {
  if (!sources) return [];
  const { rows } = await sources.read.pool.query<ModelRow>(
    `SELECT model, sum(calls) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out
       FROM "${sources.read.analyticsSchema}".model_usage_by_model GROUP BY model`,
  );
  return rows;
}

new Counter({
  name: "polity_model_tokens_total",
  help: "Language-model tokens recorded by plans and model workers (analytics model_calls), by model and direction (in, out)",
  labelNames: ["model", "direction"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("polity_model_tokens_total", async () => {
      for (const r of await modelUsage()) {
        this.inc({ model: r.model, direction: "in" }, Number(r.tokens_in ?? 0));
        this.inc({ model: r.model, direction: "out" }, Number(r.tokens_out ?? 0));
      }
    });
  },
});

new Counter({
  name: "polity_model_calls_total",
  help: "Language-model calls recorded by plans and model workers (analytics model_calls), by model",
  labelNames: ["model"],
  registers: [registry],
  async collect() {
    this.reset();
    await guarded("polity_model_calls_total", async () => {
      for (const r of await modelUsage()) this.inc({ model: r.model }, Number(r.calls ?? 0));
    });
  },
});
