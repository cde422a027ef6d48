/**
 * The gateway's Prometheus metrics, with the names the DGM design's alert rules use. Values that
 * describe the platform (queue length, completions, failures, performance, violations) are read
 * from the read models at scrape time; request counts and latencies are observed here.
 */
import type { NextFunction, Request, Response } from "express";
import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "../lib/metrics.js";
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
}

interface AgentRow {
  _id: string;
  tier: string | null;
  performance?: { tasksCompleted: number; tasksFailed: number; successRate: number | null };
}

async function agents(): Promise<AgentRow[]> {
  if (!sources) return [];
  return sources.read.db
    .collection<AgentRow>(sources.read.names.agents)
    .find({ tier: { $ne: null } }, { projection: { _id: 1, tier: 1, performance: 1 } })
    .toArray();
}

new Gauge({
  name: "task_queue_length",
  help: "Tasks waiting for a worker (PENDING, READY or ASSIGNED), all tenants",
  registers: [registry],
  async collect() {
    if (!sources) return;
    const tasks = sources.read.db.collection(sources.read.names.tasks);
    // One equality count per status: FerretDB evaluates $in by scanning (projections/mongo/find-each.ts).
    const counts = await Promise.all(
      ["PENDING", "READY", "ASSIGNED"].map((status) => tasks.countDocuments({ status })),
    );
    this.set(counts.reduce((a, b) => a + b, 0));
  },
});

new Counter({
  name: "task_completions_total",
  help: "Tasks completed, by the tier of the agent that completed them",
  labelNames: ["tier"],
  registers: [registry],
  async collect() {
    this.reset();
    const byTier = new Map<string, number>();
    for (const a of await agents())
      byTier.set(a.tier ?? "UNKNOWN", (byTier.get(a.tier ?? "UNKNOWN") ?? 0) + (a.performance?.tasksCompleted ?? 0));
    for (const [tier, n] of byTier) this.inc({ tier }, n);
  },
});

new Counter({
  name: "worker_agent_task_failures_total",
  help: "Task attempts that failed, per worker agent",
  labelNames: ["agent_id"],
  registers: [registry],
  async collect() {
    this.reset();
    for (const a of await agents())
      if (a.tier === "WORKER") this.inc({ agent_id: a._id }, a.performance?.tasksFailed ?? 0);
  },
});

new Gauge({
  name: "agent_performance_score",
  help: "Success rate of an agent's task attempts, 0 to 1 (absent before its first result)",
  labelNames: ["agent_id", "tier"],
  registers: [registry],
  async collect() {
    this.reset();
    for (const a of await agents())
      if (a.performance?.successRate !== null && a.performance?.successRate !== undefined)
        this.set({ agent_id: a._id, tier: a.tier ?? "UNKNOWN" }, a.performance.successRate);
  },
});

new Counter({
  name: "constitutional_violations_total",
  help: "ConstitutionalViolationDetected events in the log (analytics model)",
  registers: [registry],
  async collect() {
    this.reset();
    if (!sources) return;
    const { rows } = await sources.read.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${sources.read.analyticsSchema}".events WHERE type = 'ConstitutionalViolationDetected'`,
    );
    this.inc(Number(rows[0]?.n ?? 0));
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
