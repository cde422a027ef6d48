/**
 * Governance reaches the read models, through the whole flow on the real stack: policies and goals
 * go in through the gateway's GraphQL API, the hierarchy's processors decide, and both read models
 * are projected by hosts reading exactly the topics they read in production (PROJECTED_TOPICS).
 *
 * - CONSTITUTIONAL with forbiddenTerms: a goal using the term is REJECTED, and its violation and
 *   the denial are rows of analytics.constitutional_violations and policy_denials (and
 *   system_events), counted by constitutional_violations_total on /metrics, and on the goal's state
 *   document (violations, policyDenials). Before polity.governance.events was projected, all of it
 *   stayed empty (issue 18).
 * - RESOURCE_ALLOCATION with an API quota: the goal's resource requests, what they were granted and
 *   hold, its governors and mayors, and what each governor was allocated, on the state documents,
 *   agreeing with the governance events in the log.
 * - A rebuild of both read models from offset zero equals the live ones.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Db } from "mongodb";
import pg from "pg";
import { Auth } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import { ProjectionHost } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { rebuild } from "../../projections/rebuild.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { TEST_SECRET, type GraphQLBody } from "../support/gateway.js";
import { deployment, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("governance in the read models, from the gateway through the processors", () => {
  let d: TestDeployment;
  let h: RunningHierarchy;
  let governance: LogWatcher;
  let pool: pg.Pool;
  let mongo: MongoClient;
  let db: Db;
  let gateway: Gateway;
  let url = "";
  let admin = "";
  let operator = "";
  let otherTenant = "";
  const schema = `analytics_gov_${randomUUID().slice(0, 8)}`;
  const hosts: ProjectionHost[] = [];
  let rejectedGoal = "";

  async function graphql(query: string, variables: Record<string, unknown>, token: string): Promise<Json> {
    const res = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as GraphQLBody;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data as Json;
  }

  /** Polls `read` until it returns something, or fails naming what it waited for and what it last saw. */
  async function eventually<T>(what: string, read: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
    const deadline = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try {
        const v = await read();
        if (v !== undefined) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${String(last)}`);
      await sleep(250);
    }
  }

  const rows = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as Json[];

  async function define(policyId: string, category: string, rules: object): Promise<void> {
    const data = await graphql(
      `
        mutation ($input: PolicyInput!) {
          definePolicy(input: $input) {
            accepted
            commandType
          }
        }
      `,
      { input: { policyId, name: policyId, category, description: `${policyId} rules`, rules } },
      admin,
    );
    assert.deepEqual(data.definePolicy, { accepted: true, commandType: "DefinePolicy" });
    await h.policies.known(policyId, 1);
  }

  async function submit(title: string, tasks = TEN_TASK_DAG): Promise<string> {
    const data = await graphql(
      `
        mutation ($input: GoalInput!) {
          submitGoal(input: $input) {
            accepted
            aggregateId
          }
        }
      `,
      {
        input: {
          title,
          topology: "aamas",
          tasks: tasks.map((t) => ({
            id: t.id,
            title: t.title,
            domain: t.domain,
            specialization: t.specialization,
            dependsOn: t.dependsOn,
          })),
        },
      },
      operator,
    );
    assert.equal(data.submitGoal.accepted, true);
    return data.submitGoal.aggregateId as string;
  }

  before(async () => {
    d = await deployment(testTopology(), "gov-analytics", []);
    h = await d.start();
    governance = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.governance.events"]);
    pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 10 });
    mongo = new MongoClient(urls.mongoUrl);
    await mongo.connect();
    db = mongo.db(`gov_${randomUUID().slice(0, 8)}`);
    await migrate(pool, schema);
    const state = new StateStore(db);
    await state.ensureIndexes();
    const common = { kafka: d.kafka, codec: d.codec, topicPrefix: d.prefix };
    hosts.push(
      new ProjectionHost({
        ...common,
        store: new AnalyticsStore(pool, { schema }),
        topics: [...PROJECTED_TOPICS.analytics],
      }),
      new ProjectionHost({ ...common, store: state, topics: [...PROJECTED_TOPICS.state] }),
    );
    for (const p of hosts) await p.start();
    const auth = new Auth(TEST_SECRET);
    gateway = await createGateway({
      kafka: d.kafka,
      codec: d.codec,
      writer: d.writer,
      read: new ReadSide(db, pool, { analyticsSchema: schema }),
      auth,
      registryUrl: urls.schemaRegistryUrl,
      topicPrefix: d.prefix,
      projectionWaitMs: 20_000,
    });
    url = await gateway.listen(0);
    const token = (role: "admin" | "operator", tenantId = "acme") =>
      auth.mint({ subject: `${role}-user`, role, tenantId, agentId: null });
    admin = await token("admin");
    operator = await token("operator");
    otherTenant = await token("operator", "globex");
  });

  after(async () => {
    await gateway?.stop().catch(() => undefined);
    await Promise.all(hosts.map((p) => p.stop().catch(() => undefined)));
    await governance?.stop();
    await d?.stop();
    const { rows: schemas } = await pool.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`,
      [`${schema}%`],
    );
    for (const { nspname } of schemas) await pool.query(`DROP SCHEMA "${nspname}" CASCADE`);
    await pool?.end();
    await db?.dropDatabase().catch(() => undefined);
    await mongo?.close();
  });

  it("projects the analytics and state models from the governance topic", () => {
    assert.ok(PROJECTED_TOPICS.analytics.includes("polity.governance.events" as never));
    assert.ok(PROJECTED_TOPICS.state.includes("polity.governance.events" as never));
  });

  it("a goal breaking a CONSTITUTIONAL policy is rejected, and its violation and denial reach analytics, /metrics and the goal", async () => {
    await define("no-weapons", "CONSTITUTIONAL", {
      principle: "Polity builds no weapons",
      forbiddenTerms: ["weapon"],
    });
    const goalId = await submit("Water weapon", TEN_TASK_DAG.slice(0, 2));
    rejectedGoal = goalId;
    const end = await d.watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalRejected", JSON.stringify(end.value));

    // The violation and the DENY as the processors wrote them.
    const violation = await governance.until("the violation in the log", () =>
      governance.of(goalId).find((e) => e.type === "ConstitutionalViolationDetected"),
    );
    if (violation.type !== "ConstitutionalViolationDetected") return;

    // analytics (PostgreSQL): the views over the event log, and system_events.
    const violations = await eventually("analytics.constitutional_violations to show the violation", async () => {
      const found = await rows(
        `SELECT violation_id, goal_id, policy_id, policy_version, principle, severity, enforcement, tenant_id
         FROM "${schema}".constitutional_violations WHERE goal_id = $1`,
        [goalId],
      );
      return found.length > 0 ? found : undefined;
    });
    assert.deepEqual(violations, [
      {
        violation_id: violation.value.violationId,
        goal_id: goalId,
        policy_id: "no-weapons",
        policy_version: 1,
        principle: "Polity builds no weapons",
        severity: "CRITICAL",
        enforcement: "BLOCKED",
        tenant_id: "acme",
      },
    ]);
    const denials = await eventually("analytics.policy_denials to show the DENY", async () => {
      const found = await rows(
        `SELECT type, goal_id, policy_id, category, subject_type, subject_id, tenant_id
         FROM "${schema}".policy_denials WHERE goal_id = $1`,
        [goalId],
      );
      return found.length > 0 ? found : undefined;
    });
    assert.deepEqual(denials, [
      {
        type: "PolicyEvaluated",
        goal_id: goalId,
        policy_id: "no-weapons",
        category: "CONSTITUTIONAL",
        subject_type: "SubmitGoal",
        subject_id: goalId,
        tenant_id: "acme",
      },
    ]);
    assert.deepEqual(
      await rows(`SELECT type, severity, goal_id FROM "${schema}".system_events WHERE goal_id = $1`, [goalId]),
      [{ type: "ConstitutionalViolationDetected", severity: "CRITICAL", goal_id: goalId }],
    );
    assert.deepEqual(
      await rows(
        `SELECT status, end_reason LIKE 'CONSTITUTIONAL_VIOLATION:%' AS why FROM "${schema}".goals WHERE goal_id = $1`,
        [goalId],
      ),
      [{ status: "REJECTED", why: true }],
    );

    // /metrics counts it (the gateway reads the analytics event log at scrape time).
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const line = metrics.split("\n").find((l) => l.startsWith("constitutional_violations_total"));
    assert.equal(line, "constitutional_violations_total 1", `the metric line; /metrics has:\n${line}`);

    // state (MongoDB), through GraphQL: the rejected goal carries its violation and the denial.
    const goal = await eventually("the goal document to show the violation", async () => {
      const data = await graphql(
        `
          query ($id: ID!) {
            goal(id: $id) {
              status
              failure {
                code
              }
              policyDenials
              violations {
                violationId
                policyId
                policyVersion
                principle
                severity
                enforcement
              }
            }
          }
        `,
        { id: goalId },
        operator,
      );
      return data.goal?.violations?.length > 0 && data.goal.policyDenials > 0 ? data.goal : undefined;
    });
    assert.deepEqual(goal, {
      status: "REJECTED",
      failure: { code: "CONSTITUTIONAL_VIOLATION" },
      policyDenials: 1,
      violations: [
        {
          violationId: violation.value.violationId,
          policyId: "no-weapons",
          policyVersion: 1,
          principle: "Polity builds no weapons",
          severity: "CRITICAL",
          enforcement: "BLOCKED",
        },
      ],
    });
    // Another tenant sees neither the goal nor its violation.
    const foreign = await graphql(
      `
        query ($id: ID!) {
          goal(id: $id) {
            id
            violations {
              violationId
            }
          }
        }
      `,
      { id: goalId },
      otherTenant,
    );
    assert.deepEqual(foreign, { goal: null });
  });

  it("resource requests under an API quota: the goal's allocations, governors and mayors, and each governor's allocation", async () => {
    await define("quota", "RESOURCE_ALLOCATION", { taskBudget: "1.0000", quotas: { API_QUOTA: "100" } });
    const goalId = await submit("Within quota");
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    if (end.type !== "GoalCompleted") return;

    // What the log says: one BUDGET and one API_QUOTA request per task, each granted, by its governor.
    const allocatedInLog = await governance.until("20 allocations in the log", () => {
      const found = governance.of(goalId).flatMap((e) => (e.type === "ResourceAllocated" ? [e.value] : []));
      return found.length >= 20 && found;
    });
    assert.equal(allocatedInLog.length, 20);
    const perRequester = new Map<string, number>();
    for (const a of allocatedInLog) perRequester.set(a.requesterId, (perRequester.get(a.requesterId) ?? 0) + 1);

    const fields = `status tasksTotal progress governorId governorIds mayorIds phaseProgress { phase }
      resourceConsumption { computeCost apiCalls resources { kind unit requests allocated denied granted held } }
      allocations { requestId taskId requesterId kind amount granted unit status }`;
    const goal = await eventually("the goal document to show its allocations and holders", async () => {
      const data = await graphql(`query ($id: ID!) { goal(id: $id) { ${fields} } }`, { id: goalId }, operator);
      const g = data.goal;
      // Every topic applied: the goal completed, its ten tasks too, and every request answered.
      return g?.status === "COMPLETED" &&
        g.progress === 1 &&
        g.allocations.length === 20 &&
        g.allocations.every((a: Json) => a.status === "ALLOCATED") &&
        g.resourceConsumption.resources.length === 2
        ? g
        : undefined;
    });
    assert.equal(goal.tasksTotal, 10);
    assert.deepEqual(goal.phaseProgress, [], "a goal, not a project, has no phases");
    // Three domains, each with its governor; the mayors under them.
    assert.deepEqual(goal.governorIds, [...new Set(allocatedInLog.map((a) => a.requesterId))].sort());
    assert.equal(goal.governorIds.length, 3);
    assert.ok(goal.governorIds.includes(goal.governorId), "the lead governor is one of them");
    // Backend and frontend hold 4 of the 10 tasks each (testing 2): the tie goes to the first by id.
    assert.equal(goal.governorId, "aamas-governor-backend");
    const completions = d.watch.of(goalId).flatMap((e) => (e.type === "TaskCompleted" ? [e.value] : []));
    const assigned = d.watch.of(goalId).flatMap((e) => (e.type === "TaskAssigned" ? [e.value] : []));
    assert.deepEqual(
      goal.mayorIds,
      [...new Set(assigned.filter((a) => a.assigneeTier === "MAYOR").map((a) => a.assigneeId))].sort(),
    );
    assert.ok(goal.mayorIds.length >= 3);
    // Simulated workers call no model: no API call, and the API quota's reservations are released.
    assert.deepEqual(goal.resourceConsumption.resources, [
      { kind: "API_QUOTA", unit: "calls", requests: 10, allocated: 10, denied: 0, granted: "10.0000", held: "0.0000" },
      {
        kind: "BUDGET",
        unit: "billing-currency",
        requests: 10,
        allocated: 10,
        denied: 0,
        granted: "10.0000",
        // A completed task's budget holds its actual cost.
        held: end.value.totalCost,
      },
    ]);
    assert.equal(goal.resourceConsumption.apiCalls, 0);
    assert.equal(goal.resourceConsumption.computeCost, end.value.totalCost);
    assert.equal(completions.length, 10);

    // The DGM's own columns of the analytics functions, through GraphQL.
    const worker = completions[0]!.agentId;
    const progress = await eventually("the analytics model to show the goal completed", async () => {
      const data = await graphql(
        `
          query ($goal: ID!) {
            goalProgress(goalId: $goal) {
              totalTasks
              completedTasks
              failedTasks
              percentComplete
              progressPercentage
            }
          }
        `,
        { goal: goalId },
        operator,
      );
      return data.goalProgress?.completedTasks === 10 ? data.goalProgress : undefined;
    });
    assert.deepEqual(progress, {
      totalTasks: 10,
      completedTasks: 10,
      failedTasks: 0,
      percentComplete: 100,
      progressPercentage: 100,
    });
    const [sql] = await rows(`SELECT * FROM "${schema}".get_agent_workload($1)`, [worker]);
    const workload = await graphql(
      `
        query ($id: ID!) {
          agentWorkload(agentId: $id) {
            openTasks
            pendingTasks
            activeTasks
            avgDurationMs
            avgExecutionTime
            successRate
          }
        }
      `,
      { id: worker },
      operator,
    );
    assert.deepEqual(workload.agentWorkload, {
      openTasks: 0,
      pendingTasks: 0,
      activeTasks: 0,
      avgDurationMs: Number(sql!.avg_duration_ms),
      avgExecutionTime: (sql!.avg_execution_time as { toISOString(): string }).toISOString(),
      successRate: 1,
    });
    assert.match(workload.agentWorkload.avgExecutionTime, /^P0Y0M0DT0H0M[0-9.]+S$/);

    // Each governor's allocations: what the log granted it.
    for (const [governorId, n] of perRequester) {
      const agent = await eventually(`${governorId}'s allocations`, async () => {
        const data = await graphql(
          `
            query ($id: ID!) {
              agent(id: $id) {
                currentPhase
                assignedProjects
                resourceAllocation {
                  kind
                  unit
                  allocations
                  granted
                }
              }
            }
          `,
          { id: governorId },
          operator,
        );
        const total = (data.agent?.resourceAllocation ?? []).reduce((s: number, r: Json) => s + r.allocations, 0);
        return total === n ? data.agent : undefined;
      });
      assert.deepEqual(agent.resourceAllocation, [
        { kind: "API_QUOTA", unit: "calls", allocations: n / 2, granted: `${n / 2}.0000` },
        { kind: "BUDGET", unit: "billing-currency", allocations: n / 2, granted: `${n / 2}.0000` },
      ]);
      // The goal is done: the governor holds none of its tasks any more.
      assert.deepEqual([agent.currentPhase, agent.assignedProjects], [null, []]);
    }
  });

  it("rebuilds both read models from offset zero, governance included, equal to the live ones", async () => {
    assert.ok(rejectedGoal, "runs after the rejected goal");
    const reports = await rebuild({
      models: ["analytics", "state"],
      kafka: d.kafka,
      codec: d.codec,
      pool,
      db,
      topicPrefix: d.prefix,
      liveSchema: schema,
      settleTimeoutMs: 60_000,
      keep: true,
    });
    for (const r of reports) assert.equal(r.equal, true, `${r.model}: ${r.differences.join("\n")}`);
    const analytics = reports.find((r) => r.model === "analytics")!;
    const rebuilt = analytics.target.replace(/^PostgreSQL schema /, "");
    assert.deepEqual(
      await rows(`SELECT goal_id, policy_id FROM "${rebuilt}".constitutional_violations`),
      [{ goal_id: rejectedGoal, policy_id: "no-weapons" }],
      "the rebuild read the governance topic too",
    );
    const state = reports.find((r) => r.model === "state")!;
    const prefix = /collections (\S+)\*/.exec(state.target)![1]!;
    const goal = await db.collection(`${prefix}goals`).findOne({ _id: rejectedGoal as never });
    assert.equal((goal?.violations as unknown[] | undefined)?.length, 1);
    for (const c of await db.listCollections({}, { nameOnly: true }).toArray())
      if (c.name.startsWith(prefix)) await db.dropCollection(c.name);
  });
});
