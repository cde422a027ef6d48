/**
 * The REST API end to end on a whole isolated platform: goals and projects submitted over
 * /api/v1 run through the hierarchy and read back completed; agents, health and metrics answer;
 * every refusal is a 4xx naming the field and writes no command; limits (body size, rate) hold;
 * and the OpenAPI document describes exactly the routes the router has.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Admin } from "kafkajs";
import { openApiDocument } from "../../gateway/openapi.js";
import { restRouter, type RestDeps } from "../../gateway/rest.js";
import { workerApiRouter, type WorkerApiDeps } from "../../gateway/worker-api.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { gatewayRig, type GatewayRig } from "../support/gateway.js";
import { task, TEN_TASK_DAG } from "../support/hierarchy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Reply {
  status: number;
  headers: Headers;
  body: Json;
}

interface CallOptions {
  token?: string | null;
  /** JSON-encoded unless `raw` is given. */
  body?: unknown;
  /** Sent as is, with Content-Type application/json. */
  raw?: string;
  base?: string;
}

const COMMAND_TOPICS = ["polity.goals.commands", "polity.agents.commands", "polity.policies.commands"];

/** Express route paths (`/goals/:id`) as OpenAPI paths (`/goals/{id}`). */
const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");

describe("gateway REST API", () => {
  let rig: GatewayRig;
  let admin: Admin;
  let operator: string;
  let viewer: string;
  let adminToken: string;
  let otherTenant: string;
  /** The goal submitted with the ten-task DAG, once it has completed. */
  let goalId: string;

  async function call(method: string, path: string, o: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let payload: string | undefined;
    if (o.raw !== undefined || o.body !== undefined) {
      headers["content-type"] = "application/json";
      payload = o.raw ?? JSON.stringify(o.body);
    }
    const res = await fetch(`${o.base ?? rig.url}/api/v1${path}`, { method, headers, body: payload });
    const text = await res.text();
    let body: Json;
    try {
      body = text ? (JSON.parse(text) as Json) : {};
    } catch {
      body = { text };
    }
    return { status: res.status, headers: res.headers, body };
  }

  const show = (r: Reply) => `${r.status} ${JSON.stringify(r.body).slice(0, 800)}`;

  /** Polls GET `path` until `done` holds for the body, or fails saying what it last saw. */
  async function until(path: string, token: string, done: (body: Json) => boolean, ms = 60_000): Promise<Json> {
    const deadline = Date.now() + ms;
    let last: Reply | undefined;
    while (Date.now() < deadline) {
      last = await call("GET", path, { token });
      if (last.status === 200 && done(last.body)) return last.body;
      await sleep(200);
    }
    throw new Error(`GET ${path} did not reach the expected state in ${ms} ms; last: ${last && show(last)}`);
  }

  /** Records in the command topics: a refused request must leave this unchanged. */
  async function commandsWritten(): Promise<number> {
    let n = 0;
    for (const topic of COMMAND_TOPICS)
      for (const p of await admin.fetchTopicOffsets(physicalTopic(topic, rig.d.prefix))) n += Number(p.high);
    return n;
  }

  before(async () => {
    rig = await gatewayRig("gw-rest");
    admin = rig.d.kafka.admin();
    await admin.connect();
    operator = await rig.token("operator");
    viewer = await rig.token("viewer");
    adminToken = await rig.token("admin");
    otherTenant = await rig.token("operator", "globex");
  });
  after(async () => {
    await admin?.disconnect().catch(() => undefined);
    await rig?.stop();
  });

  it("documents every route the router has, and nothing else", () => {
    const router = restRouter({} as RestDeps);
    const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const routed = new Set<string>();
    const layers = [...router.stack, ...workerApiRouter({} as WorkerApiDeps).stack] as unknown as {
      route?: { path: string; methods: Record<string, boolean> };
    }[];
    for (const layer of layers) {
      if (!layer.route) continue;
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (!on || method === "_all") continue;
        const path = openApiPath(layer.route.path);
        routed.add(`${method} ${path}`);
        assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} /api/v1${path} is not in gateway/openapi.ts`);
      }
    }
    assert.ok(routed.size >= 29, `only ${routed.size} routes found on the router`);
    for (const [path, methods] of Object.entries(doc.paths))
      for (const method of Object.keys(methods))
        assert.ok(routed.has(`${method} ${path}`), `${method.toUpperCase()} ${path} is documented but not routed`);
  });

  it("has an OpenAPI 3.1 document whose references all resolve and whose operation ids are unique", () => {
    const doc = openApiDocument() as Json;
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
    assert.deepEqual(Object.keys(doc.components.schemas.Error.properties.error.properties), [
      "code",
      "message",
      "field",
    ]);
    const refs: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object")
        for (const [k, x] of Object.entries(v)) {
          if (k === "$ref" && typeof x === "string") refs.push(x);
          else walk(x);
        }
    };
    walk(doc);
    assert.ok(refs.length > 50);
    for (const r of refs) {
      const target = r
        .replace(/^#\//, "")
        .split("/")
        .reduce<unknown>((o, k) => (o as Json | undefined)?.[k], doc);
      assert.ok(target, `${r} does not resolve`);
    }
    const ids = Object.values(doc.paths as Json).flatMap((m) => Object.values(m as Json).map((o) => o.operationId));
    assert.equal(new Set(ids).size, ids.length, "operationIds must be unique");
  });

  it("serves the OpenAPI document publicly at /openapi.json and /api/v1/openapi.json", async () => {
    const top = await fetch(`${rig.url}/openapi.json`);
    assert.equal(top.status, 200);
    const doc = (await top.json()) as Json;
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/goals/{id}"].get);
    const mounted = await call("GET", "/openapi.json");
    assert.equal(mounted.status, 200);
    assert.deepEqual(mounted.body, doc);
  });

  it("submits a goal with an explicit DAG and reads it back COMPLETED with its ten tasks", async () => {
    const submitted = await call("POST", "/goals?wait=true", {
      token: operator,
      body: { title: "rest ten tasks", priority: 7, constraints: { origin: "rest" }, tasks: TEN_TASK_DAG },
    });
    assert.equal(submitted.status, 202, show(submitted));
    assert.equal(submitted.body.accepted, true);
    assert.equal(submitted.body.commandType, "SubmitGoal");
    assert.equal(submitted.body.projected, true, show(submitted));
    goalId = submitted.body.aggregateId;
    assert.equal(submitted.headers.get("location"), `/api/v1/goals/${goalId}`);

    const end = await rig.d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted");
    const goal = await until(
      `/goals/${goalId}`,
      operator,
      (g) => g.status === "COMPLETED" && g.tasks.length === 10 && g.tasks.every((t: Json) => t.status === "COMPLETED"),
    );
    assert.equal(goal.id, goalId);
    assert.equal(goal.kind, "GOAL");
    assert.equal(goal.priority, 7);
    assert.deepEqual(goal.constraints, { origin: "rest" });
    assert.equal(goal._pos, undefined, "projection bookkeeping stays out of the API");
    assert.deepEqual(goal.tasks.map((t: Json) => t.taskId).sort(), TEN_TASK_DAG.map((t) => t.id).sort());

    const tasks = await call("GET", `/goals/${goalId}/tasks?status=COMPLETED`, { token: viewer });
    assert.equal(tasks.status, 200, show(tasks));
    assert.equal(tasks.body.items.length, 10);
    assert.equal((await call("GET", `/goals/${goalId}/tasks?status=FAILED`, { token: viewer })).body.items.length, 0);

    // The audit trail comes from the analytics model, which may still be catching up.
    const trail = await until(`/goals/${goalId}/events`, viewer, (b) =>
      b.items.some((e: Json) => e.type === "GoalCompleted"),
    );
    assert.equal(trail.items[0].type, "GoalSubmitted");
    assert.ok(trail.items.filter((e: Json) => e.type === "TaskCompleted").length >= 10);
    const limited = await call("GET", `/goals/${goalId}/events?limit=3`, { token: viewer });
    assert.equal(limited.body.items.length, 3);
  });

  it("documents every field of the goal and task representations, model usage and plans included", async () => {
    assert.ok(goalId, "runs after the ten-task goal");
    const doc = openApiDocument() as Json;
    const goal = await call("GET", `/goals/${goalId}`, { token: viewer });
    assert.equal(goal.status, 200, show(goal));
    assert.deepEqual(undocumented(goal.body, { $ref: "#/components/schemas/GoalWithTasks" }, doc), []);
    assert.deepEqual(missingRequired(goal.body, doc.components.schemas.Goal), []);
    for (const t of goal.body.tasks as Json[]) assert.deepEqual(missingRequired(t, doc.components.schemas.Task), []);
    // A goal run without a model: no plans, no tokens; its planner is the one of its explicit DAG.
    assert.deepEqual(
      [goal.body.planner, goal.body.plans, goal.body.tokensIn, goal.body.modelCalls, goal.body.modelCost],
      ["explicit", [], 0, 0, "0.0000"],
    );
    assert.deepEqual(
      [
        goal.body.tasks[0].model,
        goal.body.tasks[0].usage,
        goal.body.tasks[0].attemptUsage,
        goal.body.tasks[0].tokensIn,
      ],
      [null, null, [], 0],
    );
    const usage = await call("GET", "/metrics/model-usage?by=tenant", { token: viewer });
    assert.equal(usage.status, 200, show(usage));
    assert.deepEqual(usage.body, { by: "tenant", items: [] }, "the simulated run called no model");
    assert.deepEqual(undocumented(usage.body, { $ref: "#/components/schemas/ModelUsageReport" }, doc), []);
    // The check itself finds what is missing.
    assert.deepEqual(undocumented({ ...goal.body, extra: 1 }, { $ref: "#/components/schemas/Goal" }, doc).sort(), [
      "extra",
      "tasks",
    ]);
  });

  it("lists goals with cursor pagination and filters", async () => {
    const second = await call("POST", "/goals?wait=true", {
      token: operator,
      body: { title: "rest second", tasks: [task("only", "backend", "api")] },
    });
    assert.equal(second.status, 202, show(second));
    await rig.d.watch.final(second.body.aggregateId, 60_000);
    await until(`/goals/${second.body.aggregateId}`, operator, (g) => g.status === "COMPLETED");

    const first = await call("GET", "/goals?first=1", { token: viewer });
    assert.equal(first.status, 200, show(first));
    assert.equal(first.body.items.length, 1);
    assert.equal(first.body.totalCount, 2);
    assert.equal(first.body.pageInfo.hasNextPage, true);
    assert.equal(first.body.items[0].id, second.body.aggregateId, "newest first");
    const next = await call("GET", `/goals?first=1&after=${first.body.pageInfo.endCursor}`, { token: viewer });
    assert.equal(next.status, 200, show(next));
    assert.deepEqual(
      next.body.items.map((g: Json) => g.id),
      [goalId],
    );
    assert.equal(next.body.pageInfo.hasNextPage, false);

    const completed = await call("GET", "/goals?status=COMPLETED", { token: viewer });
    assert.equal(completed.body.totalCount, 2);
    assert.equal((await call("GET", "/goals?status=RUNNING", { token: viewer })).body.totalCount, 0);
    const elsewhere = await call("GET", "/goals", { token: otherTenant });
    assert.equal(elsewhere.body.totalCount, 0, "another tenant sees none of acme's goals");

    for (const [query, field] of [
      ["first=0", "first"],
      ["first=abc", "first"],
      ["after=not-a-cursor", "after"],
      ["status=DONE", "status"],
    ]) {
      const r = await call("GET", `/goals?${query}`, { token: viewer });
      assert.equal(r.status, 400, `${query}: ${show(r)}`);
      assert.equal(r.body.error.field, field, `${query}: ${show(r)}`);
    }
  });

  it("answers the agents, health and metrics endpoints", async () => {
    const live = await fetch(`${rig.url}/api/v1/health`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: "ok" });

    const agents = await call("GET", "/agents", { token: viewer });
    assert.equal(agents.status, 200, show(agents));
    assert.ok(agents.body.items.length > 10);
    assert.equal(agents.body.items[0].currentTasks, undefined, "open-task keys of other tenants stay hidden");
    const workers = await call("GET", "/agents?tier=WORKER&domain=backend&topology=aamas", { token: viewer });
    assert.ok(workers.body.items.length > 0);
    assert.ok(workers.body.items.every((a: Json) => a.tier === "WORKER" && a.domain === "backend"));
    assert.equal((await call("GET", "/agents?tier=KING", { token: viewer })).body.error.field, "tier");

    const worker = await call("GET", `/agents/${workers.body.items[0].id}`, { token: viewer });
    assert.equal(worker.status, 200, show(worker));
    assert.ok(Array.isArray(worker.body.currentTasks));
    assert.equal((await call("GET", "/agents/no-such-agent", { token: viewer })).status, 404);

    const governor = agents.body.items.find((a: Json) => a.tier === "GOVERNOR");
    assert.ok(governor, "the aamas topology has governors");
    const status = await call("GET", `/governors/${governor.id}/status`, { token: viewer });
    assert.equal(status.status, 200, show(status));
    assert.equal(status.body.agent.id, governor.id);
    assert.ok(status.body.subordinates.length > 0);
    assert.ok(status.body.subordinates.every((s: Json) => s.superiorId === governor.id));
    assert.equal(status.body.team.count, status.body.subordinates.length);
    assert.equal(typeof status.body.performance.tasksCompleted, "number");
    const notGovernor = await call("GET", `/governors/${workers.body.items[0].id}/status`, { token: viewer });
    assert.equal(notGovernor.status, 404, show(notGovernor));

    const byStatus = await call("GET", "/health/agents", { token: viewer });
    assert.equal(byStatus.status, 200, show(byStatus));
    assert.equal(byStatus.body.total, agents.body.items.length);
    assert.equal(
      Object.values(byStatus.body.counts as Record<string, number>).reduce((a, b) => a + b, 0),
      byStatus.body.total,
    );

    const rest = await call("GET", "/system/health", { token: viewer });
    const gql = await rig.graphql(
      "{ systemHealth { status totalAgents completedTasks failedTasks runningGoals taskQueueLength components { name up } } }",
      {},
      viewer,
    );
    assert.equal(rest.status, 200, show(rest));
    const g = gql.body.data!.systemHealth as Json;
    for (const k of ["totalAgents", "completedTasks", "failedTasks", "runningGoals", "taskQueueLength"])
      assert.equal(rest.body[k], g[k], `systemHealth.${k}`);
    assert.equal(rest.body.completedTasks, 11);
    assert.deepEqual(
      rest.body.components.map((c: Json) => [c.name, c.up]),
      g.components.map((c: Json) => [c.name, c.up]),
    );

    const metrics = await call("GET", "/system/metrics", { token: viewer });
    assert.equal(metrics.status, 200, show(metrics));
    assert.equal(metrics.body.goalsByStatus.COMPLETED, 2);
    assert.equal(metrics.body.tasksByStatus.COMPLETED, 11);
    assert.equal(metrics.body.agentsByStatus && typeof metrics.body.agentsByStatus, "object");
    assert.deepEqual(metrics.body.projections.map((p: Json) => p.projection).sort(), ["analytics", "state"]);
    assert.equal(typeof metrics.body.projectionLag, "number");

    const perf = await call("GET", "/metrics/performance?tier=WORKER", { token: viewer });
    assert.equal(perf.status, 200, show(perf));
    const done = perf.body.items.reduce((n: number, a: Json) => n + a.performance.tasksCompleted, 0);
    assert.equal(done, 11, "every completed task was done by a worker");
    assert.ok(
      perf.body.items.some((a: Json) => a.utilization !== null),
      "utilization from the analytics model",
    );

    const policies = await call("GET", "/policies", { token: viewer });
    assert.equal(policies.status, 200, show(policies));
    assert.ok(Array.isArray(policies.body.items));
    const escalations = await call("GET", `/escalations?goalId=${goalId}&status=OPEN`, { token: viewer });
    assert.equal(escalations.status, 200, show(escalations));
    assert.deepEqual(escalations.body.items, []);
  });

  it("refuses invalid input with a 4xx naming the field, and writes no command", async () => {
    const before = await commandsWritten();
    const cases: { what: string; method: string; path: string; o: CallOptions; status: number; field?: string }[] = [
      {
        what: "missing title",
        method: "POST",
        path: "/goals",
        o: { token: operator, body: {} },
        status: 400,
        field: "title",
      },
      {
        what: "priority 11",
        method: "POST",
        path: "/goals",
        o: { token: operator, body: { title: "t", priority: 11 } },
        status: 400,
        field: "priority",
      },
      {
        what: "a task without a domain",
        method: "POST",
        path: "/goals",
        o: { token: operator, body: { title: "t", tasks: [{ id: "a", title: "A" }] } },
        status: 400,
        field: "tasks[0].domain",
      },
      {
        what: "malformed JSON",
        method: "POST",
        path: "/goals",
        o: { token: operator, raw: '{"title": "t",' },
        status: 400,
        field: "body",
      },
      {
        what: "a JSON array",
        method: "POST",
        path: "/goals",
        o: { token: operator, raw: "[1, 2]" },
        status: 400,
        field: "body",
      },
      { what: "no body", method: "POST", path: "/goals", o: { token: operator }, status: 400, field: "body" },
      { what: "no token", method: "POST", path: "/goals", o: { body: { title: "t" } }, status: 401 },
      {
        what: "a viewer token",
        method: "POST",
        path: "/goals",
        o: { token: viewer, body: { title: "t" } },
        status: 403,
      },
      {
        what: "a bad token",
        method: "POST",
        path: "/goals",
        o: { token: "not.a.jwt", body: { title: "t" } },
        status: 401,
      },
      { what: "an unknown goal", method: "GET", path: "/goals/goal-nope", o: { token: viewer }, status: 404 },
      {
        what: "stopping an unknown goal",
        method: "POST",
        path: "/goals/goal-nope/stop",
        o: { token: operator, body: { reason: "why not" } },
        status: 404,
      },
      {
        what: "another tenant's goal",
        method: "GET",
        path: `/goals/${goalId}`,
        o: { token: otherTenant },
        status: 404,
      },
      {
        what: "another tenant's goal's tasks",
        method: "GET",
        path: `/goals/${goalId}/tasks`,
        o: { token: otherTenant },
        status: 404,
      },
      {
        what: "another tenant's goal's events",
        method: "GET",
        path: `/goals/${goalId}/events`,
        o: { token: otherTenant },
        status: 404,
      },
      {
        what: "stopping another tenant's goal",
        method: "POST",
        path: "/emergency/stop",
        o: { token: otherTenant, body: { goalId, reason: "mine now" } },
        status: 404,
      },
      {
        what: "a stop without a reason",
        method: "POST",
        path: `/goals/${goalId}/stop`,
        o: { token: operator, body: {} },
        status: 400,
        field: "reason",
      },
      {
        what: "a body goalId other than the path's",
        method: "POST",
        path: `/goals/${goalId}/stop`,
        o: { token: operator, body: { goalId: "other", reason: "r" } },
        status: 400,
        field: "goalId",
      },
      {
        what: "a phase transition of a plain goal",
        method: "PUT",
        path: `/projects/${goalId}/phase`,
        o: { token: operator, body: { fromPhase: "INITIATION", toPhase: "FEASIBILITY" } },
        status: 400,
        field: "goalId",
      },
      {
        what: "an unknown phase",
        method: "PUT",
        path: `/projects/${goalId}/phase`,
        o: { token: operator, body: { fromPhase: "INITIATION", toPhase: "PARTY" } },
        status: 400,
        field: "toPhase",
      },
      {
        what: "a plain goal as a project",
        method: "GET",
        path: `/projects/${goalId}`,
        o: { token: viewer },
        status: 404,
      },
      {
        what: "an unknown agent command",
        method: "POST",
        path: "/agents/command",
        o: { token: adminToken, body: { type: "retire" } },
        status: 400,
        field: "type",
      },
      {
        what: "an agent command without a type",
        method: "POST",
        path: "/agents/command",
        o: { token: adminToken, body: { tier: "WORKER", targetCount: 2 } },
        status: 400,
        field: "type",
      },
      {
        what: "a scale command without targetCount",
        method: "POST",
        path: "/agents/command",
        o: { token: adminToken, body: { type: "scale", tier: "WORKER" } },
        status: 400,
        field: "targetCount",
      },
      {
        what: "scaling as an operator",
        method: "POST",
        path: "/agents/scale",
        o: { token: operator, body: { tier: "WORKER", targetCount: 2 } },
        status: 403,
      },
      {
        what: "registering an agent without a tier",
        method: "POST",
        path: "/agents",
        o: { token: adminToken, body: { agentId: "x-1" } },
        status: 400,
        field: "tier",
      },
      {
        what: "a policy without rules",
        method: "POST",
        path: "/policies",
        o: { token: adminToken, body: { policyId: "p1", name: "P", category: "SECURITY", description: "d" } },
        status: 400,
        field: "rules",
      },
      {
        what: "an amendment without a rationale",
        method: "POST",
        path: "/policies/p1/amend",
        o: { token: adminToken, body: { expectedVersion: 1, rules: {} } },
        status: 400,
        field: "rationale",
      },
      {
        what: "a task result from an operator",
        method: "POST",
        path: `/tasks/${goalId}/be-api/result`,
        o: { token: operator, body: { attempt: 1, status: "COMPLETED", result: "ok" } },
        status: 403,
      },
      { what: "an unknown route", method: "GET", path: "/nope", o: { token: viewer }, status: 404 },
      { what: "an unrouted method", method: "DELETE", path: `/goals/${goalId}`, o: { token: operator }, status: 404 },
    ];
    for (const c of cases) {
      const r = await call(c.method, c.path, c.o);
      assert.equal(r.status, c.status, `${c.what}: ${show(r)}`);
      assert.ok(r.body.error?.code && r.body.error?.message, `${c.what}: a JSON error body, got ${show(r)}`);
      if (c.field) assert.equal(r.body.error.field, c.field, `${c.what}: ${show(r)}`);
    }
    assert.equal(await commandsWritten(), before, "a refused request writes no command");
  });

  it("lets only the worker holding a task report on it, with the ids from the path", async () => {
    const goal = await call("GET", `/goals/${goalId}`, { token: viewer });
    const t = goal.body.tasks.find((x: Json) => x.taskId === "be-api");
    const worker = t.assignees.WORKER as string;
    assert.ok(worker, show(goal));
    const mine = await rig.token("agent", "acme", { subject: worker, agentId: worker });
    const before = await commandsWritten();
    const done = await call("POST", `/tasks/${goalId}/be-api/result`, {
      token: mine,
      body: { attempt: t.attempt, status: "COMPLETED", result: "again" },
    });
    assert.equal(done.status, 400, show(done));
    assert.equal(done.body.error.field, "taskId", "the attempt is over: the task is already COMPLETED");
    const other = await rig.token("agent", "acme", { subject: "someone", agentId: "someone-else" });
    const notMine = await call("POST", `/tasks/${goalId}/be-api/result`, {
      token: other,
      body: { attempt: t.attempt, status: "COMPLETED", result: "x" },
    });
    assert.equal(notMine.status, 403, show(notMine));
    const mismatch = await call("POST", `/tasks/${goalId}/be-api/result`, {
      token: mine,
      body: { taskId: "fe-ui", attempt: t.attempt, status: "COMPLETED", result: "x" },
    });
    assert.equal(mismatch.body.error?.field, "taskId", show(mismatch));
    assert.equal(await commandsWritten(), before);

    // The worker's token sees the goal it worked on, but lists no goals.
    assert.equal((await call("GET", `/goals/${goalId}`, { token: mine })).status, 200);
    assert.equal((await call("GET", "/goals", { token: mine })).status, 403);
    assert.equal((await call("GET", `/goals/${goalId}`, { token: other })).status, 404);
  });

  it("runs a project through a manual phase gate, and writes stop commands for it", async () => {
    const phased = [
      task("charter", "backend", "api", [], { phase: "INITIATION" }),
      task("study", "frontend", "react", [], { phase: "FEASIBILITY" }),
    ];
    const submitted = await call("POST", "/projects?wait=true", {
      token: operator,
      body: { title: "rest project", constraints: { phaseGate: "manual" }, tasks: phased },
    });
    assert.equal(submitted.status, 202, show(submitted));
    assert.equal(submitted.body.projected, true, show(submitted));
    const id = submitted.body.aggregateId as string;
    assert.equal(submitted.headers.get("location"), `/api/v1/projects/${id}`);

    await until(
      `/projects/${id}`,
      viewer,
      (p) =>
        p.kind === "PROJECT" && p.currentPhase === "INITIATION" && p.tasks.some((t: Json) => t.status === "COMPLETED"),
    );
    const listed = await call("GET", "/projects", { token: viewer });
    assert.deepEqual(
      listed.body.items.map((p: Json) => p.id),
      [id],
    );

    const moved = await call("PUT", `/projects/${id}/phase?wait=true`, {
      token: operator,
      body: { fromPhase: "INITIATION", toPhase: "FEASIBILITY", justification: "charter done" },
    });
    assert.equal(moved.status, 202, show(moved));
    assert.equal(moved.body.commandType, "RequestPhaseTransition");
    assert.equal(moved.body.outcome, "FEASIBILITY", show(moved));

    // StopGoal is written to the log; no tier of the hierarchy acts on it yet (processors/domain has
    // no StopGoal handler), so the receipt is checked, not the goal's end.
    const written = await commandsWritten();
    const stopped = await call("POST", `/goals/${id}/stop`, { token: operator, body: { reason: "enough for a test" } });
    assert.equal(stopped.status, 202, show(stopped));
    assert.equal(stopped.body.commandType, "StopGoal");
    assert.equal(stopped.body.aggregateId, id);
    assert.equal(stopped.headers.get("location"), `/api/v1/goals/${id}`);
    const again = await call("POST", "/emergency/stop", { token: operator, body: { goalId: id, reason: "twice" } });
    assert.equal(again.status, 202, show(again));
    assert.equal(again.body.commandType, "StopGoal");
    assert.equal(await commandsWritten(), written + 2, "each stop wrote one command");
    assert.equal(again.body.aggregateId, id);
  });

  it("accepts agent and policy commands (admin only)", async () => {
    const register = await call("POST", "/agents/command", {
      token: adminToken,
      body: { type: "register", agentId: "ext-writer-1", tier: "WORKER", domain: "docs", specialization: "writing" },
    });
    assert.equal(register.status, 202, show(register));
    assert.equal(register.body.commandType, "RegisterAgent");
    assert.equal(register.body.aggregateId, "ext-writer-1");
    const scale = await call("POST", "/agents/command", {
      token: adminToken,
      body: { type: "scale", tier: "WORKER", domain: "docs", specialization: "writing", targetCount: 1 },
    });
    assert.equal(scale.status, 202, show(scale));
    assert.equal(scale.body.commandType, "ScaleAgents");
    const direct = await call("POST", "/agents", {
      token: adminToken,
      body: { agentId: "ext-writer-2", tier: "WORKER", domain: "docs" },
    });
    assert.equal(direct.status, 202, show(direct));
    const policy = await call("POST", "/policies", {
      token: adminToken,
      body: {
        policyId: "rest-policy",
        name: "REST policy",
        category: "PERFORMANCE",
        description: "a policy defined over REST",
        rules: { maxRetries: 2 },
      },
    });
    assert.equal(policy.status, 202, show(policy));
    assert.equal(policy.body.commandType, "DefinePolicy");
    const amend = await call("POST", "/policies/rest-policy/amend", {
      token: adminToken,
      body: { expectedVersion: 1, rules: { maxRetries: 3 }, rationale: "more patience" },
    });
    assert.equal(amend.status, 202, show(amend));
    assert.equal(amend.body.aggregateId, "rest-policy");
  });

  it("answers an oversize body with 413 and writes nothing", async () => {
    const small = await rig.another({ maxBodyBytes: 1024 });
    const before = await commandsWritten();
    const big = await call("POST", "/goals", {
      base: small.url,
      token: operator,
      body: { title: "big", description: "x".repeat(2000) },
    });
    assert.equal(big.status, 413, show(big));
    assert.equal(big.body.error.code, "PAYLOAD_TOO_LARGE");
    const fine = await call("GET", "/health", { base: small.url });
    assert.equal(fine.status, 200);
    assert.equal(await commandsWritten(), before);
  });

  it("rate-limits a token with 429 and Retry-After", async () => {
    const limited = await rig.another({ rateLimitPerSecond: 5 });
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => call("GET", "/health", { base: limited.url, token: viewer })),
    );
    const refused = replies.filter((r) => r.status === 429);
    assert.ok(refused.length >= 10, `expected most of a 30-request burst refused, got ${refused.length}`);
    assert.ok(replies.some((r) => r.status === 200));
    for (const r of refused) {
      assert.equal(r.body.error.code, "RATE_LIMITED");
      assert.ok(Number(r.headers.get("retry-after")) >= 1, "Retry-After is set");
    }
    // Another token has its own allowance.
    const fresh = await call("GET", "/health", { base: limited.url, token: operator });
    assert.equal(fresh.status, 200);
  });
});

/** Resolves a local $ref of the OpenAPI document. */
function resolve(schema: Json, doc: Json): Json {
  let s = schema;
  while (typeof s?.$ref === "string")
    s = (s.$ref as string)
      .replace(/^#\//, "")
      .split("/")
      .reduce<Json>((o, k) => o?.[k], doc);
  return s;
}

/**
 * The paths of `value` the schema does not describe: object keys outside `properties` (unless
 * additionalProperties allows them), followed into nested objects and arrays, through $ref, allOf
 * and anyOf.
 */
function undocumented(value: unknown, schema: Json, doc: Json, path = ""): string[] {
  const s = resolve(schema, doc);
  if (!s || value === null || value === undefined) return [];
  if (Array.isArray(s.allOf)) {
    const parts = s.allOf.map((x: Json) => resolve(x, doc));
    const merged = { type: "object", properties: Object.assign({}, ...parts.map((p: Json) => p.properties ?? {})) };
    return undocumented(value, merged, doc, path);
  }
  if (Array.isArray(s.anyOf))
    return undocumented(value, s.anyOf.find((x: Json) => resolve(x, doc)?.type !== "null") ?? {}, doc, path);
  if (Array.isArray(value))
    return value.flatMap((v, i) => (s.items ? undocumented(v, s.items, doc, `${path}[${i}]`) : []));
  if (typeof value !== "object" || value instanceof Date) return [];
  if (!s.properties) return [];
  return Object.entries(value as Json).flatMap(([k, v]) => {
    const where = path ? `${path}.${k}` : k;
    if (!(k in s.properties)) return s.additionalProperties ? [] : [where];
    return undocumented(v, s.properties[k], doc, where);
  });
}

/** The schema's required keys that `value` lacks. */
function missingRequired(value: Json, schema: Json): string[] {
  return ((schema.required as string[] | undefined) ?? []).filter((k) => !(k in value));
}
