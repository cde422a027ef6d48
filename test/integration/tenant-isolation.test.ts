/**
 * Tenant isolation end to end, on a whole isolated platform with two tenants, A and B, and the
 * platform admin: policies and agents belong to their tenant (or to the platform), B's admin can
 * neither change nor see A's, on REST and GraphQL alike, and refusals write no command; B's
 * subscriptions carry none of A's events; A's plan limits its running goals and tasks per goal.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient, type Client } from "graphql-ws";
import type { Admin } from "kafkajs";
import WebSocket from "ws";
import { TenantPlans } from "../../gateway/plans.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { gatewayRig, type GatewayRig } from "../support/gateway.js";
import { task } from "../support/hierarchy.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const A = "tenant-a";
const B = "tenant-b";
const C = "tenant-c";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const COMMAND_TOPICS = ["polity.goals.commands", "polity.agents.commands", "polity.policies.commands"];

describe("tenant isolation", () => {
  let rig: GatewayRig;
  let kafkaAdmin: Admin;
  const t = { adminA: "", adminB: "", operatorA: "", viewerB: "", platform: "" };
  let mayor: string | undefined;
  /** A goal of A's (rejected by A's own policy), with its events in the gateway's recent history. */
  let aGoal = "";

  async function call(method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(`${rig.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  }
  const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body).slice(0, 600)}`;

  async function gql(query: string, token: string, variables: Record<string, unknown> = {}) {
    const r = await rig.graphql(query, variables, token);
    return r.body;
  }
  const codeOf = (body: { errors?: { extensions?: { code?: string } }[] }) => body.errors?.[0]?.extensions?.code;

  async function commandsWritten(): Promise<number> {
    let n = 0;
    for (const topic of COMMAND_TOPICS)
      for (const p of await kafkaAdmin.fetchTopicOffsets(physicalTopic(topic, rig.d.prefix))) n += Number(p.high);
    return n;
  }

  /** Every refusal in `work` answers a 4xx and leaves the command topics as they were. */
  async function writesNothing(work: () => Promise<void>): Promise<void> {
    const before = await commandsWritten();
    await work();
    await sleep(300);
    assert.equal(await commandsWritten(), before, "a refused command was written");
  }

  before(async () => {
    rig = await gatewayRig("tenancy", {
      plans: new TenantPlans({
        [A]: { plan: "starter", maxConcurrentGoals: 2, maxTasksPerGoal: 3, requestsPerSecond: 1000 },
        [C]: { plan: "starter", requestsPerSecond: 1 },
      }),
    });
    kafkaAdmin = rig.d.kafka.admin();
    await kafkaAdmin.connect();
    t.adminA = await rig.token("admin", A);
    t.adminB = await rig.token("admin", B);
    t.operatorA = await rig.token("operator", A);
    t.viewerB = await rig.token("viewer", B);
    t.platform = await rig.token("platform-admin", "platform");
    // The configured (platform-wide) agents, once the read model shows them.
    for (const deadline = Date.now() + 30_000; !mayor && Date.now() < deadline; await sleep(200)) {
      const agents = await call("GET", "/agents?tier=MAYOR", t.adminA);
      mayor = (agents.body.items as Json[] | undefined)?.find((a) => a.domain === "backend")?.id;
    }
    assert.ok(mayor, "no backend mayor in the read model");
  });

  after(async () => {
    await kafkaAdmin?.disconnect();
    await rig?.stop();
  });

  it("keeps the platform role to the platform tenant, and no tenant's token to it", async () => {
    await assert.rejects(rig.token("platform-admin", A), /platform-admin token carries tenant "platform"/);
    await assert.rejects(rig.token("admin", "platform"), /reserved for the platform/);
  });

  it("isolates policies: B neither changes nor sees A's; the platform's are everyone's", async () => {
    const defined = await call("POST", "/policies?wait=true", t.adminA, {
      policyId: "a-budget",
      name: "A's budget",
      category: "CONSTITUTIONAL",
      description: "A spends little",
      rules: { principle: "Spend little", maxBudget: "100.0000" },
    });
    assert.equal(defined.status, 202, show(defined));
    assert.equal(defined.body.projected, true, show(defined));
    const charter = await gql(
      `mutation { definePolicy(input: { policyId: "charter", name: "Charter", category: CONSTITUTIONAL,
         description: "for everyone", rules: { forbiddenTerms: ["weapon"] } }, waitForProjection: true) { projected } }`,
      t.platform,
    );
    assert.deepEqual(charter.data, { definePolicy: { projected: true } }, JSON.stringify(charter));

    // What each sees, on REST and GraphQL.
    const idsOf = (items: Json[]) => items.map((p) => `${p.id}:${p.tenantId ?? "platform"}`).sort();
    assert.deepEqual(idsOf((await call("GET", "/policies", t.adminA)).body.items), [
      `a-budget:${A}`,
      "charter:platform",
    ]);
    assert.deepEqual(idsOf((await call("GET", "/policies", t.viewerB)).body.items), ["charter:platform"]);
    assert.equal((await call("GET", "/policies/a-budget", t.adminB)).status, 404);
    assert.equal((await call("GET", "/policies/charter", t.viewerB)).status, 200);
    const bView = await gql(`{ policies { id tenantId } policy(id: "a-budget") { id } }`, t.adminB);
    assert.deepEqual(
      bView.data,
      { policies: [{ id: "charter", tenantId: null }], policy: null },
      JSON.stringify(bView),
    );
    const platformView = await gql(`{ policies { id } }`, t.platform);
    assert.deepEqual(
      (platformView.data!.policies as Json[]).map((p) => p.id),
      ["a-budget", "charter"],
      "the platform admin sees every tenant's",
    );

    const amendment = { expectedVersion: 1, rules: { maxBudget: "1.0000" }, rationale: "mine now" };
    await writesNothing(async () => {
      // Another tenant's policy does not exist for B; a platform-wide one is not B's (nor A's) to amend.
      const r1 = await call("POST", "/policies/a-budget/amend", t.adminB, amendment);
      assert.equal(r1.status, 404, show(r1));
      const g1 = await gql(
        `mutation { amendPolicy(input: { policyId: "a-budget", expectedVersion: 1, rules: {}, rationale: "x" }) { accepted } }`,
        t.adminB,
      );
      assert.equal(codeOf(g1), "NOT_FOUND", JSON.stringify(g1));
      const r2 = await call("POST", "/policies/charter/amend", t.adminA, amendment);
      assert.equal(r2.status, 403, show(r2));
      assert.match(r2.body.error.message, /platform-wide; only a platform admin/);
      const r3 = await call("POST", "/policies/a-budget/amend", t.platform, amendment);
      assert.equal(r3.status, 403, show(r3));
      // Nor can B take A's policy id.
      const r4 = await call("POST", "/policies", t.adminB, {
        policyId: "a-budget",
        name: "B's",
        category: "CONSTITUTIONAL",
        description: "d",
        rules: { maxPriority: 3 },
      });
      assert.equal(r4.status, 400, show(r4));
      assert.equal(r4.body.error.field, "policyId");
      assert.doesNotMatch(r4.body.error.message, /amend/, "B learns only that the id is taken");
    });
    // The owner amends its own.
    const own = await call("POST", "/policies/a-budget/amend?wait=true", t.adminA, amendment);
    assert.equal(own.status, 202, show(own));
    assert.equal(own.body.outcome, "version 2", show(own));
  });

  it("applies A's policy to A's goals only", async () => {
    const submit = async (token: string, title: string) =>
      call("POST", "/goals?wait=true", token, { title, budget: "500.0000", tasks: [task("api", "backend", "api")] });
    const a = await submit(t.operatorA, "A over budget");
    assert.equal(a.status, 202, show(a));
    assert.match(a.body.outcome ?? "", /^REJECTED: .*a-budget/, show(a));
    aGoal = a.body.aggregateId;
    const b = await submit(await rig.token("operator", B), "B with the same budget");
    assert.equal(b.status, 202, show(b));
    assert.doesNotMatch(b.body.outcome ?? "", /REJECTED/, show(b));
    // B does not see A's goal, on REST or GraphQL.
    assert.equal((await call("GET", `/goals/${a.body.aggregateId}`, t.viewerB)).status, 404);
    assert.equal((await call("GET", `/goals/${a.body.aggregateId}`, t.operatorA)).status, 200);
    const bGoals = await gql(`{ goals { edges { node { id } } } goal(id: "${a.body.aggregateId}") { id } }`, t.viewerB);
    assert.equal(bGoals.errors, undefined, JSON.stringify(bGoals.errors));
    assert.equal((bGoals.data as Json).goal, null);
    assert.ok(!JSON.stringify(bGoals.data).includes(a.body.aggregateId));
    const escalations = await call("GET", "/escalations", t.viewerB);
    assert.equal(escalations.status, 200, show(escalations));
    assert.ok(!JSON.stringify(escalations.body).includes(a.body.aggregateId));
  });

  it("isolates agents: B neither registers over, scales nor sees A's; B's subscription carries none of A's", async () => {
    const registered = await call("POST", "/agents?wait=true", t.adminA, {
      agentId: "a-worker-1",
      tier: "WORKER",
      domain: "backend",
      specialization: "a-special",
      superiorId: mayor,
      executor: "external",
    });
    assert.equal(registered.status, 202, show(registered));
    assert.equal(registered.body.outcome, "REGISTERED", show(registered));

    const ids = (items: Json[]) => items.map((a) => a.id as string);
    const seenByA = ids((await call("GET", "/agents", t.adminA)).body.items);
    const seenByB = ids((await call("GET", "/agents", t.viewerB)).body.items);
    assert.ok(seenByA.includes("a-worker-1") && seenByA.includes(mayor!));
    assert.ok(!seenByB.includes("a-worker-1") && seenByB.includes(mayor!), "B sees the platform's agents, not A's");
    assert.equal((await call("GET", "/agents/a-worker-1", t.viewerB)).status, 404);
    const mine = await call("GET", "/agents/a-worker-1", t.adminA);
    assert.equal(mine.body.tenantId, A, show(mine));
    const bAgents = await gql(`{ agent(id: "a-worker-1") { id } agents { id } }`, t.viewerB);
    assert.equal((bAgents.data as Json).agent, null);
    assert.ok(!ids((bAgents.data as Json).agents).includes("a-worker-1"));

    await writesNothing(async () => {
      const over = await call("POST", "/agents", t.adminB, {
        agentId: "a-worker-1",
        tier: "WORKER",
        superiorId: mayor,
      });
      assert.equal(over.status, 400, show(over));
      assert.equal(over.body.error.field, "agentId");
      const under = await call("POST", "/agents/command", t.adminB, {
        type: "register",
        agentId: "b-worker-1",
        tier: "WORKER",
        superiorId: "a-worker-1",
      });
      assert.equal(under.status, 404, show(under));
      const pool = { tier: "WORKER", domain: "backend", specialization: "a-special", targetCount: 0 };
      assert.equal((await call("POST", "/agents/scale", t.adminB, pool)).status, 404);
      assert.equal((await call("POST", "/agents/command", t.adminB, { type: "scale", ...pool })).status, 404);
      const g = await gql(
        `mutation { scaleAgents(tier: WORKER, domain: "backend", specialization: "a-special", targetCount: 0) { accepted } }`,
        t.adminB,
      );
      assert.equal(codeOf(g), "NOT_FOUND", JSON.stringify(g));
      // A tenant does not scale the platform's pools, and the platform does not scale A's.
      const platformPool = await call("POST", "/agents/scale", t.adminA, {
        tier: "WORKER",
        domain: "backend",
        specialization: "api",
        targetCount: 0,
      });
      assert.equal(platformPool.status, 403, show(platformPool));
      assert.equal((await call("POST", "/agents/scale", t.platform, pool)).status, 403);
    });

    // Live: A's subscription gets A's new agent; B's gets nothing of it.
    const got: Record<string, Json[]> = { a: [], b: [] };
    const clients: Client[] = [];
    const subscribe = (who: "a" | "b", token: string) =>
      new Promise<void>((resolve, reject) => {
        const client = createClient({
          url: `${rig.url.replace(/^http/, "ws")}/graphql`,
          webSocketImpl: WebSocket,
          connectionParams: { authorization: `Bearer ${token}` },
          retryAttempts: 0,
          on: { connected: () => setTimeout(resolve, 300) },
        });
        clients.push(client);
        client.subscribe(
          { query: `subscription { agentHealth { type agentId } }` },
          { next: (p) => got[who]!.push(p.data!.agentHealth as Json), error: reject, complete: () => undefined },
        );
      });
    await Promise.all([subscribe("a", t.adminA), subscribe("b", t.viewerB)]);
    try {
      await rig.gateway.live.ready;
      const second = await call("POST", "/agents?wait=true", t.adminA, {
        agentId: "a-worker-2",
        tier: "WORKER",
        domain: "backend",
        specialization: "a-special",
        superiorId: mayor,
        executor: "external",
      });
      assert.equal(second.body.outcome, "REGISTERED", show(second));
      const deadline = Date.now() + 10_000;
      while (!got.a!.some((e) => e.agentId === "a-worker-2") && Date.now() < deadline) await sleep(100);
      assert.ok(
        got.a!.some((e) => e.type === "AgentRegistered" && e.agentId === "a-worker-2"),
        JSON.stringify(got.a),
      );
      await sleep(500);
      assert.deepEqual(
        got.b!.filter((e) => String(e.agentId).startsWith("a-")),
        [],
        "B's subscription carries A's agents",
      );
      // A goal stream of A's goal is not B's to open, though its events are in the feed's history.
      const seen: unknown[] = [];
      await new Promise<void>((resolve, reject) =>
        clients[1]!.subscribe(
          { query: `subscription { goalProgress(goalId: "${aGoal}") { type goalId } }`, variables: {} },
          { next: (p) => seen.push(p), error: reject, complete: resolve },
        ),
      );
      assert.match(JSON.stringify(seen), /NOT_FOUND/);
      assert.ok(!JSON.stringify(seen).includes('"type"'), `B got A's events: ${JSON.stringify(seen)}`);
    } finally {
      for (const c of clients) await c.dispose();
    }

    // The worker API: a token of B speaking for A's agent is refused.
    const impostor = await rig.token("agent", B, { agentId: "a-worker-1" });
    const beat = await call("POST", "/agents/me/heartbeat", impostor, { load: 0 });
    assert.equal(beat.status, 404, show(beat));
  });

  it("holds A to its plan: tasks per goal and goals running at once", async () => {
    const tasks = (n: number) =>
      Array.from({ length: n }, (_, i) => task(`t${i}`, "backend", "api", [], { phase: "INITIATION" }));
    await writesNothing(async () => {
      const big = await call("POST", "/goals", t.operatorA, { title: "too big", tasks: tasks(4) });
      assert.equal(big.status, 403, show(big));
      assert.equal(big.body.error.field, "tasks");
      assert.match(big.body.error.message, /maxTasksPerGoal 3/);
    });
    // Projects behind a manual phase gate stay running (with a budget A's own policy allows).
    const project = (title: string) =>
      call("POST", "/projects?wait=true", t.operatorA, {
        title,
        budget: "1.0000",
        constraints: { phaseGate: "manual" },
        tasks: tasks(1),
      });
    for (const title of ["first", "second"]) {
      const r = await project(title);
      assert.equal(r.status, 202, show(r));
      assert.equal(r.body.projected, true, show(r));
      assert.doesNotMatch(r.body.outcome, /REJECTED/, show(r));
    }
    await writesNothing(async () => {
      const third = await project("third");
      assert.equal(third.status, 429, show(third));
      assert.match(third.body.error.message, /maxConcurrentGoals 2/);
      const g = await gql(`mutation { submitGoal(input: { title: "over" }) { accepted } }`, t.operatorA);
      assert.equal(codeOf(g), "RATE_LIMITED", JSON.stringify(g));
    });
    // The rate is per tenant, at its plan's rate (C: 1 per second, a burst of 2), across its tokens.
    const [c1, c2] = [await rig.token("viewer", C, { subject: "c1" }), await rig.token("viewer", C, { subject: "c2" })];
    const codes = [];
    for (const token of [c1, c2, c1, c2]) codes.push(await call("GET", "/policies", token));
    assert.deepEqual(
      codes.map((r) => r.status),
      [200, 200, 429, 429],
    );
    assert.match(
      codes[3]!.body.error.message,
      /tenant tenant-c is over its plan's requestsPerSecond \(1, plan starter\)/,
    );
    // B's plan (the default) is not A's.
    const b = await call("POST", "/projects", await rig.token("operator", B), {
      title: "B's",
      constraints: { phaseGate: "manual" },
      tasks: tasks(5),
    });
    assert.equal(b.status, 202, show(b));
  });
});
