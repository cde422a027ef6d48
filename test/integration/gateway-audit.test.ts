/**
 * The gateway's audit reads on the real stack (Kafka, registry, FerretDB, PostgreSQL): a goal run to
 * completion under a RESOURCE_ALLOCATION policy, then
 *
 * - auditTrail: the goal's causal timeline replayed from Kafka, the same events the analytics event
 *   table holds, every cause an earlier event, the policy decisions with their versions, `limit`
 *   and `from` (offsets for times);
 * - time travel: goal(id, asOf: T) with its tasks, their dependencies and its trail as the log
 *   stood at T (a time in the middle of the run, while one task was running), against the live
 *   goal; agent(id, asOf) and its superior with the tasks they held at T; hierarchy(asOf) before
 *   the agents existed; the tenant and agent-token rules as of T; asOf in the future refused.
 *
 * What the log said at T is worked out here from the analytics event table (an independent copy of
 * the log), not from the gateway's replay.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { gatewayRig, type GatewayRig, type GraphQLBody } from "../support/gateway.js";
import { TEN_TASK_DAG } from "../support/hierarchy.js";

const DAG = TEN_TASK_DAG.map((t) => ({ ...t, inputs: [] }));
const POLICY = `gw-audit-budget-${randomUUID().slice(0, 6)}`;

const SUBMIT = `mutation ($input: GoalInput!) {
  submitGoal(input: $input, waitForProjection: true) { accepted aggregateId projected }
}`;
const TRAIL_FIELDS = `seq type occurredAt actorId actorTier eventId causationId topic partition offset
  causedBy caused summary decidedUnder policy { category decision decidedBy consulted reasons }`;

interface Trail {
  seq: number;
  type: string;
  occurredAt: string;
  actorId: string;
  actorTier: string;
  eventId: string;
  causationId: string | null;
  topic: string;
  partition: number;
  offset: string;
  causedBy: number | null;
  caused: number[];
  summary: string;
  decidedUnder: string[];
  policy: { category: string; decision: string; decidedBy: string; consulted: string[]; reasons: string[] } | null;
}

/** One goal or task event as the analytics event table holds it. */
interface Logged {
  eventId: string;
  type: string;
  at: number;
  taskId: string | null;
  assigneeId: string | null;
}

const RANK: Record<string, [number, string]> = {
  TaskCreated: [0, "PENDING"],
  TaskAssigned: [1, "ASSIGNED"],
  TaskAccepted: [2, "ACCEPTED"],
  TaskStarted: [3, "RUNNING"],
  TaskCompleted: [4, "COMPLETED"],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

function ok(r: { status: number; body: GraphQLBody }): Record<string, unknown> {
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  return r.body.data!;
}

function errorOf(r: { body: GraphQLBody }): { code?: string; field?: string; message: string } {
  const e = r.body.errors?.[0];
  assert.ok(e, `expected an error, got ${JSON.stringify(r.body)}`);
  return { code: e.extensions?.code, field: e.extensions?.field, message: e.message };
}

/** Each task's status at `at` from the logged events (a run without failures: the furthest step). */
function statusesAt(logged: Logged[], at: number): Map<string, string> {
  const out = new Map<string, [number, string]>();
  for (const e of logged) {
    const r = RANK[e.type];
    if (!r || !e.taskId || e.at > at) continue;
    if ((out.get(e.taskId)?.[0] ?? -1) < r[0]) out.set(e.taskId, r);
  }
  return new Map([...out].map(([k, v]) => [k, v[1]]));
}

/** The open tasks (`goal/task`) an agent held at `at`: assigned to it and not completed by then. */
function heldAt(logged: Logged[], goalId: string, agentId: string, at: number): string[] {
  const done = new Set(logged.filter((e) => e.type === "TaskCompleted" && e.at <= at).map((e) => e.taskId));
  const held = logged.filter(
    (e) => e.type === "TaskAssigned" && e.assigneeId === agentId && e.at <= at && !done.has(e.taskId),
  );
  return [...new Set(held.map((e) => `${goalId}/${e.taskId}`))].sort();
}

describe("gateway audit: the causal trail and time travel from the log", () => {
  let rig: GatewayRig;
  let operator: string;
  let goalId: string;
  /** Before the rig (and its agents) existed. */
  let beforeRig: Date;
  let trail: Trail[];
  let logged: Logged[];
  /** The middle of the run: `task` running on `worker`, assigned to it by `mayor`. */
  let mid: { at: Date; task: string; worker: string; mayor: string };

  before(async () => {
    beforeRig = new Date(Date.now() - 1000);
    rig = await gatewayRig("gw-audit");
    operator = await rig.token("operator");
    const admin = await rig.token("admin");
    const policy = ok(
      await rig.graphql(
        `mutation ($input: PolicyInput!) { definePolicy(input: $input, waitForProjection: true) { accepted projected } }`,
        {
          input: {
            policyId: POLICY,
            name: "Task budgets",
            category: "RESOURCE_ALLOCATION",
            description: "every task is paid for",
            rules: { taskBudget: "1.0000" },
            appliesToTiers: [],
            domains: [],
          },
        },
        admin,
      ),
    );
    assert.deepEqual(policy.definePolicy, { accepted: true, projected: true });
    // The hierarchy reads the policy from the same log as the read model; give it a moment more.
    await sleep(1000);
    goalId = `gw-audit-${randomUUID().slice(0, 8)}`;
    const submitted = ok(await rig.graphql(SUBMIT, { input: { goalId, title: "audited goal", tasks: DAG } }, operator));
    assert.deepEqual(submitted.submitGoal, { accepted: true, aggregateId: goalId, projected: true });
    await eventually(
      async () => {
        const g = ok(await rig.graphql(`query ($id: ID!) { goal(id: $id) { status } }`, { id: goalId }, operator))
          .goal as { status: string } | null;
        assert.notEqual(g?.status, "FAILED");
        return g?.status === "COMPLETED" ? true : undefined;
      },
      90_000,
      `goal ${goalId} to complete`,
    );

    trail = ok(
      await rig.graphql(
        `query ($id: ID!) { auditTrail(goalId: $id, limit: 500) { ${TRAIL_FIELDS} } }`,
        { id: goalId },
        operator,
      ),
    ).auditTrail as Trail[];
    const projected = trail.filter((e) => /polity\.(goals|tasks)\.events$/.test(e.topic));
    // The analytics event table, once it holds every goal and task event the log holds (it also
    // holds the goal's governance events, which the trail shows under their own topic).
    logged = await eventually(
      async () => {
        const { rows } = await rig.pool.query<{
          event_id: string;
          type: string;
          occurred_at: Date;
          payload: { taskId?: string; task?: { id: string }; assigneeId?: string };
        }>(
          `SELECT event_id, type, occurred_at, payload FROM "${rig.schema}".events
            WHERE correlation_id = $1 AND (topic LIKE '%polity.goals.events' OR topic LIKE '%polity.tasks.events')`,
          [goalId],
        );
        return rows.length >= projected.length
          ? rows.map((r) => ({
              eventId: r.event_id,
              type: r.type,
              at: r.occurred_at.getTime(),
              // TaskCreated names its task inside the spec.
              taskId: r.payload.taskId ?? r.payload.task?.id ?? null,
              assigneeId: r.payload.assigneeId ?? null,
            }))
          : undefined;
      },
      30_000,
      "the analytics event table to hold the goal's events",
    );

    // T: halfway through the longest run of a task that waited for others and that others wait for.
    const at = (type: string, task: string) => logged.find((e) => e.type === type && e.taskId === task)?.at;
    // (test-e2e and release wait for every one of those, so they are handed out after T.)
    const candidates = DAG.filter((t) => t.dependsOn.length > 0 && t.id !== "release" && t.id !== "test-e2e")
      .map((t) => ({ task: t.id, started: at("TaskStarted", t.id)!, completed: at("TaskCompleted", t.id)! }))
      .sort((a, b) => b.completed - b.started - (a.completed - a.started));
    const pick = candidates[0]!;
    assert.ok(pick.completed - pick.started >= 2, `no task ran for 2 ms or more: ${JSON.stringify(candidates)}`);
    const workerAssignment = logged.find(
      (e) => e.type === "TaskAssigned" && e.taskId === pick.task && e.assigneeId?.includes("worker"),
    )!;
    const mayorAssignment = logged.find(
      (e) => e.type === "TaskAssigned" && e.taskId === pick.task && e.assigneeId?.includes("mayor"),
    )!;
    mid = {
      at: new Date(pick.started + Math.floor((pick.completed - pick.started) / 2)),
      task: pick.task,
      worker: workerAssignment.assigneeId!,
      mayor: mayorAssignment.assigneeId!,
    };
  });
  after(async () => {
    await rig?.stop();
  });

  it("replays the goal's trail from Kafka: the logged events, causes before effects, policy decisions", async () => {
    // The same goal and task events as the analytics event table, each once.
    const projected = trail.filter((e) => /polity\.(goals|tasks)\.events$/.test(e.topic));
    assert.deepEqual(projected.map((e) => e.eventId).sort(), logged.map((e) => e.eventId).sort());
    assert.equal(new Set(trail.map((e) => e.eventId)).size, trail.length, "an event twice in the trail");
    assert.deepEqual(
      trail.map((e) => e.seq),
      trail.map((_, i) => i + 1),
    );
    assert.equal(trail[0]!.type, "SubmitGoal");
    // Topics by their catalog names, as everywhere in the API (not the deployment's prefixed ones).
    assert.equal(trail[0]!.topic, "polity.goals.commands");
    assert.equal(trail.find((e) => e.type === "GoalCompleted")!.topic, "polity.goals.events");
    assert.equal(trail[0]!.actorId, "operator-user");
    assert.equal(trail[0]!.causedBy, null);
    assert.equal(trail.filter((e) => e.type === "GoalCompleted").length, 1);
    assert.equal(trail.filter((e) => e.type === "TaskCompleted").length, 10);

    // Every cause is an earlier event of the trail, the one causationId names, and links are mirrored.
    const bySeq = (seq: number) => trail[seq - 1]!;
    for (const e of trail) {
      if (e.causedBy !== null) {
        assert.ok(e.causedBy < e.seq, `#${e.seq} ${e.type} caused by the later #${e.causedBy}`);
        assert.equal(bySeq(e.causedBy).eventId, e.causationId, `#${e.seq} ${e.type}`);
        assert.ok(bySeq(e.causedBy).caused.includes(e.seq), `#${e.causedBy} does not list #${e.seq}`);
      }
      for (const c of e.caused) assert.equal(bySeq(c).causedBy, e.seq);
    }
    // The events a command caused point at it; the goal ends because its last task completed.
    assert.equal(bySeq(trail.find((e) => e.type === "GoalSubmitted")!.causedBy!).type, "SubmitGoal");
    const final = trail.find((e) => e.type === "GoalCompleted")!;
    assert.equal(bySeq(final.causedBy!).type, "TaskCompleted");
    assert.match(bySeq(final.causedBy!).summary, /taskId=release /);
    // Each task that waited for others was handed out because one of them completed.
    const completedSeq = new Map(
      trail.filter((e) => e.type === "TaskCompleted").map((e) => [e.summary.match(/taskId=([\w-]+)/)![1]!, e.seq]),
    );
    for (const t of DAG.filter((x) => x.dependsOn.length > 0)) {
      const first = trail.find((e) => e.type === "TaskAssigned" && e.summary.includes(`taskId=${t.id} `))!;
      assert.ok(first, `no TaskAssigned of ${t.id}`);
      assert.ok(
        t.dependsOn.some((d) => completedSeq.get(d) === first.causedBy),
        `${t.id} assigned (#${first.seq}) caused by #${first.causedBy}, not by a completion of ${t.dependsOn.join(", ")}`,
      );
      for (const d of t.dependsOn)
        assert.ok(completedSeq.get(d)! < first.seq, `${t.id} assigned before ${d} completed`);
    }

    // The policy: one evaluation per task's budget, each naming the version that decided.
    const ref = `${POLICY}@v1`;
    const evaluations = trail.filter((e) => e.type === "PolicyEvaluated");
    assert.equal(evaluations.length, 10, trail.map((e) => e.type).join(", "));
    for (const e of evaluations) {
      assert.deepEqual(
        { ...e.policy!, reasons: [] },
        {
          category: "RESOURCE_ALLOCATION",
          decision: "ALLOW",
          decidedBy: ref,
          consulted: [ref],
          reasons: [],
        },
      );
      assert.equal(bySeq(e.causedBy!).type, "ResourceRequested");
      assert.deepEqual(e.decidedUnder, []);
    }
    const allocations = trail.filter((e) => e.type === "ResourceAllocated");
    assert.equal(allocations.length, 10);
    for (const a of allocations) assert.deepEqual(a.decidedUnder, [ref]);
    assert.ok(trail.filter((e) => e.type !== "PolicyEvaluated").every((e) => e.policy === null));

    // limit: the first events; the nested field: the same trail.
    const first = ok(
      await rig.graphql(
        `query ($id: ID!) { auditTrail(goalId: $id, limit: 3) { ${TRAIL_FIELDS} } }`,
        { id: goalId },
        operator,
      ),
    ).auditTrail;
    assert.deepEqual(first, trail.slice(0, 3));
  });

  it("numbers the trail in log order: offsets rise within every partition", () => {
    for (const topic of new Set(trail.map((e) => `${e.topic}#${e.partition}`))) {
      const offsets = trail.filter((e) => `${e.topic}#${e.partition}` === topic).map((e) => Number(e.offset));
      assert.deepEqual(
        offsets,
        [...offsets].sort((a, b) => a - b),
        `${topic} out of log order`,
      );
    }
  });

  it("replays from a time: only what the log holds from then on", async () => {
    const later = ok(
      await rig.graphql(
        `query ($id: ID!, $from: DateTime) { goal(id: $id) { auditTrail(limit: 500, from: $from) { ${TRAIL_FIELDS} } } }`,
        { id: goalId, from: mid.at.toISOString() },
        operator,
      ),
    ).goal as { auditTrail: Trail[] };
    const part = later.auditTrail;
    const all = new Map(trail.map((e) => [e.eventId, e]));
    assert.ok(part.length > 0 && part.length < trail.length, `${part.length} of ${trail.length}`);
    assert.ok(
      part.every((e) => all.has(e.eventId)),
      "an event not in the whole trail",
    );
    assert.deepEqual(
      part.map((e) => e.seq),
      part.map((_, i) => i + 1),
    );
    // From each partition, everything from some offset to the end.
    for (const topic of new Set(part.map((e) => e.topic))) {
      const offsets = (list: Trail[]) =>
        list
          .filter((e) => e.topic === topic)
          .map((e) => Number(e.offset))
          .sort((a, b) => a - b);
      const whole = offsets(trail);
      const got = offsets(part);
      assert.deepEqual(got, whole.slice(whole.length - got.length), `${topic}: not a tail of the log`);
    }
    const types = part.map((e) => e.type);
    assert.ok(!types.includes("SubmitGoal") && !types.includes("GoalSubmitted") && !types.includes("TaskCreated"));
    assert.ok(types.includes("GoalCompleted"));
    assert.ok(part.some((e) => e.type === "TaskCompleted" && e.summary.includes(`taskId=${mid.task} `)));
  });

  it("answers goal(id, asOf) as the log stood then, tasks and dependencies included", async () => {
    const expected = statusesAt(logged, mid.at.getTime());
    const completed = [...expected].filter(([, s]) => s === "COMPLETED").map(([t]) => t);
    assert.equal(expected.get(mid.task), "RUNNING");
    assert.ok(completed.length >= 1 && completed.length < 10, `completed at T: ${completed.join(", ")}`);

    const q = `query ($id: ID!, $at: DateTime) {
      goal(id: $id, asOf: $at) {
        id status tasksTotal progress taskSummary { status count }
        tasks { taskId status dependencies { taskId status } }
        done: tasks(status: COMPLETED) { taskId }
        auditTrail(limit: 500) { seq eventId occurredAt }
      }
      live: goal(id: $id) { status tasks { taskId status } }
    }`;
    const data = ok(await rig.graphql(q, { id: goalId, at: mid.at.toISOString() }, operator));
    const then = data.goal as {
      id: string;
      status: string;
      tasksTotal: number;
      progress: number;
      taskSummary: { status: string; count: number }[];
      tasks: { taskId: string; status: string; dependencies: { taskId: string; status: string }[] }[];
      done: { taskId: string }[];
      auditTrail: { seq: number; eventId: string; occurredAt: string }[];
    };
    assert.equal(then.id, goalId);
    assert.equal(then.status, "RUNNING");
    assert.equal(then.tasksTotal, 10);
    assert.equal(then.progress, completed.length / 10);
    assert.deepEqual(
      Object.fromEntries(then.tasks.map((t) => [t.taskId, t.status])),
      Object.fromEntries(DAG.map((t) => [t.id, expected.get(t.id)])),
    );
    const counts: Record<string, number> = {};
    for (const s of expected.values()) counts[s] = (counts[s] ?? 0) + 1;
    assert.deepEqual(Object.fromEntries(then.taskSummary.map((s) => [s.status, s.count])), counts);
    assert.deepEqual(then.done.map((t) => t.taskId).sort(), completed.sort());
    // Dependencies as of T too: the running task's are all completed, the last task's is not.
    for (const t of then.tasks) {
      const spec = DAG.find((x) => x.id === t.taskId)!;
      assert.deepEqual(
        t.dependencies.map((d) => [d.taskId, d.status]).sort(),
        spec.dependsOn.map((d) => [d, expected.get(d)]).sort(),
        t.taskId,
      );
    }
    assert.ok(then.tasks.find((t) => t.taskId === mid.task)!.dependencies.every((d) => d.status === "COMPLETED"));
    // Its trail: the events up to T.
    assert.deepEqual(
      then.auditTrail,
      trail
        .filter((e) => Date.parse(e.occurredAt) <= mid.at.getTime())
        .map((e) => ({ seq: e.seq, eventId: e.eventId, occurredAt: e.occurredAt })),
    );
    // The live goal is done.
    const live = data.live as { status: string; tasks: { status: string }[] };
    assert.equal(live.status, "COMPLETED");
    assert.ok(live.tasks.length === 10 && live.tasks.every((t) => t.status === "COMPLETED"));

    // Before its submission the goal did not exist.
    const submittedAt = trail.find((e) => e.type === "GoalSubmitted")!.occurredAt;
    const early = ok(
      await rig.graphql(
        `query ($id: ID!, $at: DateTime) { goal(id: $id, asOf: $at) { id } }`,
        {
          id: goalId,
          at: new Date(Date.parse(submittedAt) - 1).toISOString(),
        },
        operator,
      ),
    );
    assert.deepEqual(early, { goal: null });
  });

  it("keeps the tenant and agent-token rules as of a time", async () => {
    const at = mid.at.toISOString();
    const q = `query ($id: ID!, $at: DateTime) { goal(id: $id, asOf: $at) { id status } live: goal(id: $id) { id } auditTrail(goalId: $id) { seq } }`;
    // Another tenant sees nothing of it, then or now.
    const foreign = ok(await rig.graphql(q, { id: goalId, at }, await rig.token("operator", "globex")));
    assert.deepEqual(foreign, { goal: null, live: null, auditTrail: [] });
    // The worker running the task at T sees the goal as of T.
    const running = ok(
      await rig.graphql(q, { id: goalId, at }, await rig.token("agent", "acme", { agentId: mid.worker })),
    );
    assert.equal((running.goal as { status: string }).status, "RUNNING");
    // The end-to-end tester held nothing of it at T (its task came later): the goal is not visible
    // as of T, though it is now.
    const tester = "aamas-worker-testing-e2e-test-1";
    const assignedToTester = logged.filter((e) => e.type === "TaskAssigned" && e.assigneeId === tester);
    assert.ok(assignedToTester.length > 0, "the e2e worker ran a task");
    assert.ok(
      assignedToTester.every((e) => e.at > mid.at.getTime()),
      "the e2e worker was given a task by T",
    );
    const later = ok(
      await rig.graphql(
        `query ($id: ID!, $at: DateTime) { goal(id: $id, asOf: $at) { id } live: goal(id: $id) { id } }`,
        {
          id: goalId,
          at,
        },
        await rig.token("agent", "acme", { agentId: tester }),
      ),
    );
    assert.deepEqual(later, { goal: null, live: { id: goalId } });
  });

  it("answers agent(id, asOf) with what it and its superior held then, and hierarchy(asOf) before the agents", async () => {
    const at = mid.at.getTime();
    const workerHeld = heldAt(logged, goalId, mid.worker, at);
    const mayorHeld = heldAt(logged, goalId, mid.mayor, at);
    assert.ok(workerHeld.includes(`${goalId}/${mid.task}`), JSON.stringify(workerHeld));
    assert.ok(mayorHeld.includes(`${goalId}/${mid.task}`), JSON.stringify(mayorHeld));

    const q = `query ($id: ID!, $at: DateTime) {
      agent(id: $id, asOf: $at) {
        id tier status load
        currentTasks { id status }
        superior { id tier currentTasks { id status } subordinates { id } }
      }
      live: agent(id: $id) { currentTasks { id } superior { id subordinates { id } } }
    }`;
    const data = ok(await rig.graphql(q, { id: mid.worker, at: mid.at.toISOString() }, operator));
    const then = data.agent as {
      id: string;
      tier: string;
      load: number;
      currentTasks: { id: string; status: string }[];
      superior: {
        id: string;
        tier: string;
        currentTasks: { id: string; status: string }[];
        subordinates: { id: string }[];
      };
    };
    const expected = statusesAt(logged, at);
    const statusOf = (key: string) => expected.get(key.slice(key.indexOf("/") + 1));
    assert.equal(then.id, mid.worker);
    assert.equal(then.tier, "WORKER");
    assert.deepEqual(
      then.currentTasks.map((t) => [t.id, t.status]).sort(),
      workerHeld.map((k) => [k, statusOf(k)]),
    );
    assert.equal(then.load, workerHeld.length);
    assert.equal(then.superior.id, mid.mayor);
    assert.equal(then.superior.tier, "MAYOR");
    assert.deepEqual(
      then.superior.currentTasks.map((t) => [t.id, t.status]).sort(),
      mayorHeld.map((k) => [k, statusOf(k)]),
    );
    const live = data.live as { currentTasks: unknown[]; superior: { id: string; subordinates: { id: string }[] } };
    assert.deepEqual(live.currentTasks, [], "the live worker holds nothing: the goal is done");
    assert.equal(live.superior.id, mid.mayor);
    assert.deepEqual(
      then.superior.subordinates.map((s) => s.id).sort(),
      live.superior.subordinates.map((s) => s.id).sort(),
    );

    // The hierarchy as of T is the live one; before the rig started there was none.
    const tree = `query ($at: DateTime) { hierarchy(topology: aamas, asOf: $at) { agent { id } children { agent { id } } } }`;
    const liveTree = ok(
      await rig.graphql(`{ hierarchy(topology: aamas) { agent { id } children { agent { id } } } }`, {}, operator),
    );
    const thenTree = ok(await rig.graphql(tree, { at: mid.at.toISOString() }, operator));
    assert.deepEqual(thenTree, liveTree);
    assert.equal((liveTree.hierarchy as unknown[]).length, 1);
    const none = ok(
      await rig.graphql(
        `query ($id: ID!, $at: DateTime) { hierarchy(asOf: $at) { depth } agent(id: $id, asOf: $at) { id } }`,
        {
          id: mid.worker,
          at: beforeRig.toISOString(),
        },
        operator,
      ),
    );
    assert.deepEqual(none, { hierarchy: [], agent: null });
  });

  it("refuses asOf in the future or not a time, naming the argument", async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    for (const [query, variables] of [
      [`query ($id: ID!, $at: DateTime) { goal(id: $id, asOf: $at) { id } }`, { id: goalId, at: future }],
      [`query ($id: ID!, $at: DateTime) { agent(id: $id, asOf: $at) { id } }`, { id: mid.worker, at: future }],
      [`query ($at: DateTime) { hierarchy(asOf: $at) { depth } }`, { at: future }],
      [`query ($id: ID!, $at: DateTime) { goal(id: $id, asOf: $at) { id } }`, { id: goalId, at: "yesterday" }],
    ] as const) {
      const r = await rig.graphql(query, variables, operator);
      const e = errorOf(r);
      assert.equal(e.code, "INVALID_INPUT", `${query}: ${e.message}`);
      assert.equal(e.field, "asOf", e.message);
    }
    const bad = errorOf(
      await rig.graphql(
        `query ($id: ID!) { auditTrail(goalId: $id, from: "not a time") { seq } }`,
        { id: goalId },
        operator,
      ),
    );
    assert.deepEqual([bad.code, bad.field], ["INVALID_INPUT", "from"]);
    // Anonymous callers are refused before anything is read.
    const anon = errorOf(
      await rig.graphql(`query ($id: ID!) { goal(id: $id, asOf: "2020-01-01T00:00:00Z") { id } }`, { id: goalId }),
    );
    assert.equal(anon.code, "UNAUTHENTICATED");
  });
});
