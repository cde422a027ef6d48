/**
 * The REST routes and shapes of the two source designs (issue 19), on a whole isolated platform:
 * the DGM GoalRequest without a title and its GoalResponse; AgentInfo fields beside the API's own;
 * /health/system, /metrics/resource; a task handed to a governor, run through the hierarchy, and
 * the governor's performance, tenant-filtered; a governor's resources scaled; agent commands; the
 * OpenAPI document against the router; and the gateway's configurable listen address.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Admin } from "kafkajs";
import { ConfigError, loadConfig } from "../../lib/config.js";
import { startGateway } from "../../gateway/main.js";
import { openApiDocument } from "../../gateway/openapi.js";
import { paths as workerApiPaths } from "../../gateway/openapi-agents.js";
import { restRouter, type RestDeps } from "../../gateway/rest.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { TEST_SECRET, gatewayRig, type GatewayRig } from "../support/gateway.js";
import { urls } from "../support/infra.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Reply {
  status: number;
  headers: Headers;
  body: Json;
}

const COMMAND_TOPICS = ["polity.goals.commands", "polity.agents.commands", "polity.policies.commands"];
const NEW_ROUTES = [
  "get /health/system",
  "get /metrics/resource",
  "post /governors/{id}/tasks",
  "get /governors/{id}/performance",
  "put /governors/{id}/resources",
];

describe("REST routes and shapes of the source designs", () => {
  let rig: GatewayRig;
  let admin: Admin;
  let operator: string;
  let viewer: string;
  let adminToken: string;
  /** The platform admin scales the shared worker pools (a tenant admin only its own agents'). */
  let platformAdmin: string;
  let globex: string;
  let governor: Json;

  async function call(method: string, path: string, token: string | null, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${rig.url}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Json) : {} };
  }
  const show = (r: Reply) => `${r.status} ${JSON.stringify(r.body).slice(0, 800)}`;

  async function until(path: string, token: string, done: (b: Json) => boolean, ms = 60_000): Promise<Json> {
    const deadline = Date.now() + ms;
    let last: Reply | undefined;
    while (Date.now() < deadline) {
      last = await call("GET", path, token);
      if (last.status === 200 && done(last.body)) return last.body;
      await sleep(250);
    }
    throw new Error(`GET ${path} did not reach the expected state; last: ${last && show(last)}`);
  }

  async function commandsWritten(): Promise<number> {
    let n = 0;
    for (const topic of COMMAND_TOPICS)
      for (const p of await admin.fetchTopicOffsets(physicalTopic(topic, rig.d.prefix))) n += Number(p.high);
    return n;
  }

  /** A refusal: the status, the field named, and no command written. */
  async function refused(
    method: string,
    path: string,
    token: string,
    body: unknown,
    status: number,
    field?: string,
  ): Promise<Reply> {
    const before = await commandsWritten();
    const r = await call(method, path, token, body);
    assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${show(r)}`);
    if (field) assert.equal(r.body.error.field, field, show(r));
    assert.equal(await commandsWritten(), before, `${method} ${path} wrote a command`);
    return r;
  }

  before(async () => {
    rig = await gatewayRig("gw-designs");
    admin = rig.d.kafka.admin();
    await admin.connect();
    operator = await rig.token("operator");
    viewer = await rig.token("viewer");
    adminToken = await rig.token("admin");
    platformAdmin = await rig.token("platform-admin", "platform");
    globex = await rig.token("operator", "globex");
    const governors = await until(
      "/agents?tier=GOVERNOR&domain=frontend&topology=aamas",
      viewer,
      (b) => b.items.length > 0,
    );
    governor = governors.items[0];
  });
  after(async () => {
    await admin?.disconnect().catch(() => undefined);
    await rig?.stop();
  });

  it("documents every route the router serves, the new ones included, and nothing else", () => {
    const router = restRouter({} as RestDeps);
    const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const routed = new Set<string>();
    for (const layer of router.stack as unknown as { route?: { path: string; methods: Record<string, boolean> } }[]) {
      if (!layer.route) continue;
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (!on || method === "_all") continue;
        const p = layer.route.path.replace(/:(\w+)/g, "{$1}");
        routed.add(`${method} ${p}`);
        assert.ok(doc.paths[p]?.[method], `${method.toUpperCase()} /api/v1${p} is not in gateway/openapi.ts`);
      }
    }
    for (const route of NEW_ROUTES) assert.ok(routed.has(route), `${route} is not routed`);
    // The worker API has a router of its own (gateway/worker-api.ts), documented in openapi-agents.ts.
    for (const [p, methods] of Object.entries(doc.paths))
      for (const method of Object.keys(methods))
        assert.ok(
          routed.has(`${method} ${p}`) || workerApiPaths[p]?.[method],
          `${method.toUpperCase()} ${p} is documented but not routed`,
        );
  });

  it("accepts the DGM GoalRequest without a title and answers with the GoalResponse fields", async () => {
    const deadline = Date.now() + 24 * 3600_000;
    const description = "Build a storefront\nwith a catalogue, a cart and a checkout";
    const waited = await call("POST", "/goals?wait=true", operator, {
      description,
      priority: "high",
      constraints: { max_cost: 100, stack: ["react", "postgres"], region: "eu" },
      deadline,
      domain_hints: ["frontend", "backend"],
    });
    assert.equal(waited.status, 202, show(waited));
    assert.equal(waited.body.commandType, "SubmitGoal");
    assert.equal(waited.body.projected, true, show(waited));
    assert.equal(waited.body.goal_id, waited.body.aggregateId);
    assert.notEqual(waited.body.status, undefined);
    assert.equal(typeof waited.body.tasks_created, "number");
    assert.equal(typeof waited.body.agents_allocated, "number");
    assert.ok("estimated_completion" in waited.body);
    assert.deepEqual(undocumented(waited.body, { $ref: "#/components/schemas/GoalReceipt" }), []);

    const goal = await until(`/goals/${waited.body.goal_id}`, operator, (g) => !!g.title);
    assert.equal(goal.title, "Build a storefront");
    assert.equal(goal.description, description);
    assert.equal(goal.priority, 8);
    assert.deepEqual(goal.domainHints, ["frontend", "backend"]);
    assert.deepEqual(goal.constraints, { max_cost: "100", stack: '["react","postgres"]', region: "eu" });
    assert.equal(new Date(goal.deadline).getTime(), deadline);
    const ended = await rig.d.watch.final(waited.body.goal_id, 90_000);
    assert.equal(ended.type, "GoalCompleted");
    // Once projected, a waited submission shows the read model's numbers (goal_id here is set by the client).
    const again = await call("POST", "/goals?wait=true", operator, {
      goal_id: "dgm-goal-1",
      description: "x".repeat(300),
      priority: 4,
      domain_hints: ["testing"],
    });
    assert.equal(again.status, 202, show(again));
    assert.equal(again.body.goal_id, "dgm-goal-1");
    const long = await until("/goals/dgm-goal-1", operator, (g) => !!g.title);
    assert.equal(long.title.length, 120, "a derived title is cut to 120 characters");

    const plain = await call("POST", "/goals", operator, { description: "Write the docs", priority: 3 });
    assert.equal(plain.status, 202, show(plain));
    assert.deepEqual(
      [plain.body.status, plain.body.tasks_created, plain.body.agents_allocated, plain.body.estimated_completion],
      ["SUBMITTED", 0, 0, null],
    );
    // Today's shape still works and still gets the receipt fields.
    const today = await call("POST", "/goals", operator, { title: "today's shape", domainHints: ["frontend"] });
    assert.equal(today.status, 202, show(today));
    assert.equal(today.body.goal_id, today.body.aggregateId);

    await refused("POST", "/goals", operator, { priority: 5 }, 400, "title");
    await refused("POST", "/goals", operator, { description: "d", priority: "urgent" }, 400, "priority");
    await refused("POST", "/goals", operator, { description: "d", priority: 7.5 }, 400, "priority");
    await refused("POST", "/goals", operator, { description: "d", deadline: Date.now() - 1000 }, 400, "deadline");
    await refused("POST", "/goals", operator, { description: "d", deadline: -5 }, 400, "deadline");
    await refused("POST", "/goals", operator, { description: "d", domain_hints: "frontend" }, 400, "domain_hints");
    await refused("POST", "/goals", operator, { description: "d", domain_hints: ["ok", ""] }, 400, "domain_hints[1]");
    await refused("POST", "/goals", operator, { description: "d", goal_id: "a", goalId: "b" }, 400, "goal_id");
    await refused("POST", "/goals", operator, { description: "d", goal_id: "bad id" }, 400, "goal_id");
  });

  it("adds the designs' AgentInfo fields to GET /agents and GET /agents/{id}", async () => {
    const agents = await call("GET", "/agents?tier=WORKER&domain=frontend", viewer);
    assert.equal(agents.status, 200, show(agents));
    const w = agents.body.items[0];
    assert.equal(w.agent_id, w.id);
    assert.equal(w.agent_type, "worker");
    assert.equal(w.tier, "WORKER", "the API's own fields stay");
    assert.ok(w.capabilities.includes(w.specialization));
    assert.equal(typeof w.current_load, "number");
    assert.equal(w.max_capacity, w.capacity);
    assert.equal(typeof w.performance_metrics.tasks_completed, "number");
    assert.deepEqual(undocumented(agents.body, { $ref: "#/components/schemas/AgentList" }), []);
    const one = await call("GET", `/agents/${w.id}`, viewer);
    assert.equal(one.status, 200, show(one));
    assert.deepEqual(one.body.current_tasks, one.body.currentTasks);
    assert.deepEqual(undocumented(one.body, { $ref: "#/components/schemas/AgentDetail" }), []);
  });

  it("hands a task to a governor: a one-task goal in its domain that its governor runs", async () => {
    const path = `/governors/${governor.id}/tasks`;
    await refused("POST", path, viewer, { title: "t" }, 403);
    await refused("POST", "/governors/no-such-governor/tasks", operator, { title: "t" }, 404);
    const worker = (await call("GET", "/agents?tier=WORKER&domain=frontend", viewer)).body.items[0];
    await refused("POST", `/governors/${worker.id}/tasks`, operator, { title: "t" }, 404);
    await refused("POST", path, operator, { priority: 3 }, 400, "title");
    await refused("POST", path, operator, { title: "t", specialization: "cobol" }, 400, "specialization");
    await refused("POST", path, operator, { title: "t", domain: "backend" }, 400, "domain");
    await refused("POST", path, operator, { title: "t", priority: 11 }, 400, "priority");
    await refused("POST", path, operator, { title: "t", estimatedEffortMs: -1 }, 400, "estimatedEffortMs");
    await refused("POST", path, operator, { title: "t", task_id: "bad id" }, 400, "taskId");
    await refused("POST", path, operator, { title: "t", tasks: [] }, 400, "tasks");

    const r = await call("POST", `${path}?wait=true`, operator, {
      description: "Build the sign-in page\nwith a password field",
      specialization: "react",
      task_id: "sign-in",
      estimated_effort_ms: 20,
    });
    assert.equal(r.status, 202, show(r));
    assert.deepEqual(
      [r.body.commandType, r.body.governor_id, r.body.domain, r.body.task_id],
      ["SubmitGoal", governor.id, "frontend", "sign-in"],
    );
    assert.equal(r.headers.get("location"), `/api/v1/goals/${r.body.goal_id}`);
    assert.deepEqual(undocumented(r.body, { $ref: "#/components/schemas/GovernorTaskReceipt" }), []);
    const ended = await rig.d.watch.final(r.body.goal_id, 90_000);
    assert.equal(ended.type, "GoalCompleted");
    const goal = await until(`/goals/${r.body.goal_id}`, operator, (g) => g.tasks?.[0]?.status === "COMPLETED");
    assert.equal(goal.title, "Build the sign-in page");
    assert.equal(goal.tasks.length, 1);
    assert.deepEqual([goal.tasks[0].taskId, goal.tasks[0].domain], ["sign-in", "frontend"]);
    assert.equal(goal.tasks[0].assignees.GOVERNOR, governor.id, "the governor named in the path ran it");
    // Another tenant does not see the goal.
    assert.equal((await call("GET", `/goals/${r.body.goal_id}`, globex)).status, 404);
  });

  it("reports a governor's team performance for the caller's tenant", async () => {
    const path = `/governors/${governor.id}/performance`;
    const perf = await until(path, viewer, (b) => b.tasks.completed >= 1);
    assert.equal(perf.governor_id, governor.id);
    assert.equal(perf.domain, "frontend");
    assert.equal(perf.tasks_failed, 0);
    assert.equal(perf.success_rate, 1);
    assert.equal(typeof perf.avg_duration_ms, "number");
    assert.ok(perf.team.workers > 0 && perf.team.capacity > 0, JSON.stringify(perf.team));
    assert.ok(perf.team.tasks_completed >= perf.tasks_completed);
    assert.equal(typeof perf.utilization, "number");
    assert.deepEqual(undocumented(perf, { $ref: "#/components/schemas/GovernorPerformance" }), []);
    const other = await call("GET", path, globex);
    assert.equal(other.status, 200, show(other));
    assert.deepEqual([other.body.tasks.total, other.body.success_rate], [0, null], "globex ran nothing there");
    assert.equal(other.body.team.workers, perf.team.workers, "the team is the platform's");
    assert.equal((await call("GET", path, null)).status, 401);
    const worker = (await call("GET", "/agents?tier=WORKER", viewer)).body.items[0];
    assert.equal((await call("GET", `/governors/${worker.id}/performance`, viewer)).status, 404);

    // GET /governors/{id}/status: the heartbeat's load is already a fraction of the capacity.
    const status = await call("GET", `/governors/${governor.id}/status`, viewer);
    assert.equal(status.status, 200, show(status));
    if (status.body.capacity) assert.equal(status.body.utilization, status.body.load);
    const team = status.body.subordinates as Json[];
    const held = team.reduce((n, a) => n + (a.load ?? 0) * (a.capacity ?? 0), 0);
    assert.ok(Math.abs(status.body.team.load - held) < 1e-3, JSON.stringify(status.body.team));
  });

  it("sets a governor's resources with ScaleAgents (admin only)", async () => {
    const path = `/governors/${governor.id}/resources`;
    await refused("PUT", path, operator, { targetCount: 2 }, 403);
    await refused("PUT", "/governors/no-such-governor/resources", adminToken, { targetCount: 2 }, 404);
    await refused("PUT", path, adminToken, { specialization: "css" }, 400, "targetCount");
    await refused("PUT", path, adminToken, { targetCount: 2, tier: "PRESIDENT" }, 400, "tier");
    await refused("PUT", path, adminToken, { targetCount: 2, specialization: "cobol" }, 400, "specialization");
    await refused("PUT", path, adminToken, { targetCount: 2, topology: "dgm" }, 400, "topology");
    await refused("PUT", path, adminToken, { targetCount: 5000 }, 400, "targetCount");

    const r = await call("PUT", path, platformAdmin, { specialization: "css", targetCount: 2, reason: "more styling" });
    assert.equal(r.status, 202, show(r));
    assert.deepEqual(
      [r.body.commandType, r.body.domain, r.body.tier, r.body.specialization],
      ["ScaleAgents", "frontend", "WORKER", "css"],
    );
    assert.deepEqual(undocumented(r.body, { $ref: "#/components/schemas/GovernorResourcesReceipt" }), []);
    await until(
      "/agents?tier=WORKER&domain=frontend&topology=aamas",
      viewer,
      (b) => b.items.filter((a: Json) => a.specialization === "css" && a.status !== "TERMINATED").length === 2,
    );
  });

  it("carries scale, register and stop through POST /agents/command, refusing other types by name", async () => {
    const unknown = await refused(
      "POST",
      "/agents/command",
      adminToken,
      { type: "terminate", agentId: "x" },
      400,
      "type",
    );
    assert.match(unknown.body.error.message, /"scale", "register", "stop", "emergency_stop"/);
    await refused("POST", "/agents/command", adminToken, { agentId: "x" }, 400, "type");
    const goals = await call("GET", "/goals?status=COMPLETED", operator);
    const goalId = goals.body.items[0].id;
    await refused("POST", "/agents/command", operator, { type: "stop", goalId }, 400, "reason");
    await refused("POST", "/agents/command", globex, { type: "stop", goalId, reason: "no" }, 404);
    await refused("POST", "/agents/command", viewer, { type: "stop", goalId, reason: "no" }, 403);
    const stop = await call("POST", "/agents/command", operator, { type: "emergency_stop", goalId, reason: "drill" });
    assert.equal(stop.status, 202, show(stop));
    assert.deepEqual([stop.body.commandType, stop.body.aggregateId], ["StopGoal", goalId]);
    const scale = await call("POST", "/agents/command", platformAdmin, {
      type: "scale",
      tier: "WORKER",
      domain: "testing",
      specialization: "unit-test",
      targetCount: 1,
    });
    assert.equal(scale.status, 202, show(scale));
    assert.equal(scale.body.commandType, "ScaleAgents");
  });

  it("answers GET /health/system in the DGM SystemHealth shape, tenant-filtered", async () => {
    assert.equal((await call("GET", "/health/system", null)).status, 401);
    const h = await call("GET", "/health/system", viewer);
    assert.equal(h.status, 200, show(h));
    assert.ok(["healthy", "degraded", "unhealthy"].includes(h.body.status), h.body.status);
    assert.equal(h.body.components.kafka.status, "up");
    assert.equal(h.body.components.postgres.status, "up");
    assert.equal(typeof h.body.projection_lag.total, "number");
    assert.ok(!Number.isNaN(Date.parse(h.body.timestamp)));
    const api = await call("GET", "/system/health", viewer);
    const pairs: [string, string][] = [
      ["total_agents", "totalAgents"],
      ["completed_tasks", "completedTasks"],
      ["failed_tasks", "failedTasks"],
    ];
    for (const [design, own] of pairs) assert.equal(h.body[design], api.body[own], design);
    assert.ok(h.body.completed_tasks > 0);
    assert.deepEqual(undocumented(h.body, { $ref: "#/components/schemas/DesignSystemHealth" }), []);
    const other = await call("GET", "/health/system", globex);
    assert.equal(other.body.completed_tasks, 0, "globex's tasks only");
    assert.equal(other.body.total_agents, h.body.total_agents, "agents are the platform's");
  });

  it("answers GET /metrics/resource per agent and tier with the tenant's budget and model usage", async () => {
    const r = await call("GET", "/metrics/resource", viewer);
    assert.equal(r.status, 200, show(r));
    const agents = await call("GET", "/agents", viewer);
    assert.equal(r.body.agents.length, agents.body.items.length);
    const workers = r.body.tiers.find((t: Json) => t.tier === "WORKER");
    assert.ok(workers && workers.capacity > 0, JSON.stringify(r.body.tiers));
    assert.ok(workers.utilization >= 0 && workers.utilization <= 1);
    assert.ok(r.body.budget.goals >= 3, JSON.stringify(r.body.budget));
    assert.equal(r.body.model_usage.calls, 0, "the simulated run called no model");
    assert.deepEqual(undocumented(r.body, { $ref: "#/components/schemas/ResourceMetrics" }), []);
    const filtered = await call("GET", "/metrics/resource?tier=GOVERNOR", viewer);
    assert.ok(filtered.body.agents.every((a: Json) => a.tier === "GOVERNOR"));
    assert.equal((await call("GET", "/metrics/resource?tier=KING", viewer)).body.error.field, "tier");
    const other = await call("GET", "/metrics/resource", globex);
    assert.deepEqual([other.body.tenant_id, other.body.budget.goals], ["globex", 0]);
  });

  it("listens on the address POLITY_GATEWAY_HOST names, 127.0.0.1 by default", async () => {
    assert.equal(loadConfig({}).gatewayHost, "127.0.0.1");
    assert.equal(loadConfig({ POLITY_GATEWAY_HOST: "0.0.0.0" }).gatewayHost, "0.0.0.0");
    assert.throws(() => loadConfig({ POLITY_GATEWAY_HOST: "127.0.0.1:4000" }), ConfigError);
    assert.throws(() => loadConfig({ POLITY_GATEWAY_HOST: "http://example" }), /POLITY_GATEWAY_HOST/);

    const home = fs.mkdtempSync(path.join(os.tmpdir(), "polity-host-"));
    const secret = process.env.POLITY_JWT_SECRET;
    const host = process.env.POLITY_GATEWAY_HOST;
    process.env.POLITY_JWT_SECRET = TEST_SECRET;
    process.env.POLITY_GATEWAY_HOST = "127.0.0.2";
    const running = await startGateway({
      urls,
      port: 0,
      home,
      topicPrefix: rig.d.prefix,
      analyticsSchema: rig.schema,
      collectionPrefix: "",
      mongoDb: rig.db.databaseName,
      overrides: { ui: false },
    });
    try {
      const url = new URL(running.url);
      assert.equal(url.hostname, "127.0.0.2");
      const h = await fetch(`${running.url}/api/v1/health/system`, { headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(h.status, 200);
      await assert.rejects(fetch(`http://127.0.0.1:${url.port}/health`), "nothing listens on 127.0.0.1");
    } finally {
      await running.stop();
      if (secret === undefined) delete process.env.POLITY_JWT_SECRET;
      else process.env.POLITY_JWT_SECRET = secret;
      if (host === undefined) delete process.env.POLITY_GATEWAY_HOST;
      else process.env.POLITY_GATEWAY_HOST = host;
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

// --- the OpenAPI document against real answers (as in gateway-rest.test.ts) ------------------------------

function resolve(schema: Json, doc: Json): Json {
  let s = schema;
  while (typeof s?.$ref === "string")
    s = (s.$ref as string)
      .replace(/^#\//, "")
      .split("/")
      .reduce<Json>((o, k) => o?.[k], doc);
  return s;
}

/** Paths of `value` that its schema does not describe. */
function undocumented(value: unknown, schema: Json, doc: Json = openApiDocument() as Json, at = ""): string[] {
  const s = resolve(schema, doc);
  if (!s || value === null || value === undefined) return [];
  if (Array.isArray(s.allOf)) {
    const parts = s.allOf.map((x: Json) => resolve(x, doc));
    const merged = { type: "object", properties: Object.assign({}, ...parts.map((p: Json) => p.properties ?? {})) };
    return undocumented(value, merged, doc, at);
  }
  if (Array.isArray(s.anyOf))
    return undocumented(value, s.anyOf.find((x: Json) => resolve(x, doc)?.type !== "null") ?? {}, doc, at);
  if (Array.isArray(value))
    return value.flatMap((v, i) => (s.items ? undocumented(v, s.items, doc, `${at}[${i}]`) : []));
  if (typeof value !== "object" || value instanceof Date) return [];
  if (!s.properties) return [];
  return Object.entries(value as Json).flatMap(([k, v]) => {
    const where = at ? `${at}.${k}` : k;
    if (!(k in s.properties)) return s.additionalProperties ? [] : [where];
    return undocumented(v, s.properties[k], doc, where);
  });
}
