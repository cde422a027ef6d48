/**
 * The MongoDB state projection on the real stack: the hierarchy runs goals and a project, a
 * ProjectionHost feeds StateStore, and the documents must agree with the log, survive a batch applied
 * twice, a host replaced mid-way with its checkpoints rewound, and equal a rebuild from the log.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Db } from "mongodb";
import { ProjectionHost, checkpointKey, type LoggedEvent } from "../../projections/host.js";
import {
  StateStore,
  type AgentDoc,
  type CheckpointDoc,
  type GoalDoc,
  type TaskDoc,
} from "../../projections/mongo/state-store.js";
import { submitGoal } from "../../producers/commands.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { urls } from "../support/infra.js";
import { deployment, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { LogWatcher, type Seen } from "../support/watch.js";

const who = { tenantId: "acme", userId: "alice" };
const TOPICS = ["polity.goals.events", "polity.tasks.events", "polity.agents.events"];
const PHASES = ["INITIATION", "FEASIBILITY", "REQUIREMENTS", "DESIGN", "DEVELOPMENT", "QA", "DEPLOYMENT", "LAUNCH"];

describe("MongoDB state projection", () => {
  let d: TestDeployment;
  let agentsWatch: LogWatcher;
  let client: MongoClient;
  const databases: Db[] = [];
  let db: Db;
  let store: StateStore;
  let host: ProjectionHost;

  const newHost = async (s: StateStore): Promise<ProjectionHost> => {
    const h = new ProjectionHost({ kafka: d.kafka, codec: d.codec, store: s, topics: TOPICS, topicPrefix: d.prefix });
    await h.start();
    return h;
  };
  const freshDb = (): Db => {
    const fresh = client.db(`state_${randomUUID().slice(0, 8)}`);
    databases.push(fresh);
    return fresh;
  };

  before(async () => {
    d = await deployment(testTopology(), "mongo");
    agentsWatch = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events"]);
    client = new MongoClient(urls.mongoUrl);
    await client.connect();
    db = freshDb();
    store = new StateStore(db);
    await store.ensureIndexes();
    host = await newHost(store);
  });
  after(async () => {
    await host?.stop();
    await agentsWatch?.stop();
    await d?.stop();
    for (const x of databases) await x.dropDatabase().catch(() => undefined);
    await client?.close();
  });

  /** Everything the watchers read, by catalog topic partition, in log order. */
  function logged(): Map<string, LoggedEvent[]> {
    const out = new Map<string, LoggedEvent[]>();
    for (const s of [...d.watch.seen, ...agentsWatch.seen]) {
      const topic = s.topic.slice(d.prefix.length);
      const key = checkpointKey(topic, s.partition);
      const list = out.get(key) ?? [];
      list.push(toLogged(s, topic));
      out.set(key, list);
    }
    for (const list of out.values()) list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    return out;
  }
  function toLogged(s: Seen, topic: string): LoggedEvent {
    return { event: s.event, topic, partition: s.partition, offset: s.offset, timestamp: new Date(0) };
  }

  /** Waits until the store's checkpoints cover every event the watchers have read, once the log is quiet. */
  async function caughtUp(s: StateStore = store, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Stragglers (reports after a goal's end) must reach the watchers too, or the comparison with a
    // rebuild from what they read would miss what the host applied.
    let seen = -1;
    while (seen !== d.watch.seen.length + agentsWatch.seen.length) {
      seen = d.watch.seen.length + agentsWatch.seen.length;
      await new Promise((r) => setTimeout(r, 1_500));
    }
    for (;;) {
      const checkpoints = await s.checkpoints();
      const behind: string[] = [];
      for (const [key, list] of logged()) {
        const last = list[list.length - 1]!.offset;
        const at = checkpoints.get(key) ?? 0n;
        if (at <= last) behind.push(`${key} at ${at}, log has ${last}`);
      }
      if (behind.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`projection did not catch up in ${timeoutMs} ms: ${behind.join("; ")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Every document of every collection, sorted, for equality checks. */
  async function snapshot(target: Db): Promise<Record<string, unknown[]>> {
    const out: Record<string, unknown[]> = {};
    for (const name of ["goals", "tasks", "agents", "escalations", "policies", "checkpoints"]) {
      const docs = await target.collection<{ _id: string }>(name).find({}).sort({ _id: 1 }).toArray();
      // A superior's subordinates arrive from several partitions, in whatever order they were applied.
      out[name] = docs.map((doc) =>
        Array.isArray((doc as { subordinates?: unknown }).subordinates)
          ? { ...doc, subordinates: [...(doc as unknown as { subordinates: string[] }).subordinates].sort() }
          : doc,
      );
    }
    return out;
  }

  const allEvents = (): PolityEvent[] => [...d.watch.seen, ...agentsWatch.seen].map((s) => s.event);

  /** Completions per agent in the whole log. */
  function completionsByAgent(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of allEvents())
      if (e.type === "TaskCompleted") out.set(e.value.agentId, (out.get(e.value.agentId) ?? 0) + 1);
    return out;
  }

  async function assertAgentsMatchLog(target: Db): Promise<void> {
    const agents = await target.collection<AgentDoc>("agents").find({}).toArray();
    const expected = completionsByAgent();
    for (const a of agents) {
      const perf = a.performance as { tasksCompleted: number; successRate: number | null };
      assert.equal(perf.tasksCompleted, expected.get(String(a._id)) ?? 0, `tasksCompleted of ${String(a._id)}`);
    }
    const registered = allEvents().filter((e) => e.type === "AgentRegistered").length;
    assert.equal(agents.filter((a) => a.tier).length, registered, "one registered document per AgentRegistered");
  }

  it("projects a ten-task goal: goal, tasks and agents agree with the log", async () => {
    const { goalId } = await submitGoal(d.writer, who, { title: "DAG", topology: "aamas", tasks: TEN_TASK_DAG });
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    if (end.type !== "GoalCompleted") return;
    await caughtUp();

    const goal = await db.collection<GoalDoc>("goals").findOne({ _id: goalId });
    assert.ok(goal, `goal ${goalId} projected`);
    assert.equal(goal.status, "COMPLETED");
    assert.equal(goal.tenantId, "acme");
    assert.deepEqual(goal.taskSummary, { COMPLETED: 10 });
    assert.equal(goal.tasksTotal, 10);
    assert.equal(goal.progress, 1);
    assert.equal(goal.result, end.value.result);
    assert.deepEqual(goal.resourceConsumption.computeCost, end.value.totalCost, "cost sums the tasks' attempts");
    assert.ok(goal.completedAt instanceof Date && goal.submittedAt instanceof Date);

    const tasks = await db.collection<TaskDoc>("tasks").find({ goalId }).toArray();
    assert.equal(tasks.length, 10);
    const completed = new Map(
      d.watch.of(goalId).flatMap((e) => (e.type === "TaskCompleted" ? [[e.value.taskId, e.value] as const] : [])),
    );
    for (const t of tasks) {
      const c = completed.get(String(t.taskId));
      assert.ok(c, `log has a TaskCompleted for ${String(t.taskId)}`);
      assert.equal(t.status, "COMPLETED", `${String(t.taskId)} status`);
      assert.equal(t.assignees.WORKER, c.agentId, `${String(t.taskId)} worker`);
      assert.ok(t.assignees.GOVERNOR && t.assignees.MAYOR, `${String(t.taskId)} has a governor and a mayor`);
      assert.equal(t.cost, c.cost);
      assert.equal(t.timings.durationMs, c.durationMs);
    }

    const agents = await db.collection<AgentDoc>("agents").find({}).toArray();
    const total = agents.reduce((s, a) => s + (a.performance as { tasksCompleted: number }).tasksCompleted, 0);
    assert.equal(total, 10, "tasksCompleted sums to the ten completions");
    await assertAgentsMatchLog(db);
    for (const a of agents) {
      assert.deepEqual(a.currentTasks, [], `${String(a._id)} holds no task once the goal is done`);
      if (a.superiorId) {
        const sup = agents.find((x) => x._id === a.superiorId);
        assert.ok(sup?.subordinates.includes(a._id), `${String(a.superiorId)} lists ${String(a._id)}`);
      }
    }
    const worker = agents.find((a) => (a.performance as { tasksCompleted: number }).tasksCompleted > 0);
    assert.equal(worker?.performance.successRate, 1);
    assert.ok(
      (worker?.performance.avgCompletionMs ?? 0) > 0,
      "average completion time of a worker that completed tasks",
    );
  });

  it("shows a project's eight phases with their dates", async () => {
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Eight phases",
      kind: "PROJECT",
      domainHints: ["frontend", "backend"],
    });
    const end = await d.watch.final(goalId, 120_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    await caughtUp();
    const goal = await db.collection<GoalDoc>("goals").findOne({ _id: goalId });
    assert.ok(goal);
    assert.equal(goal.kind, "PROJECT");
    assert.equal(goal.currentPhase, "LAUNCH");
    const phases = goal.phases as { phase: string; startedAt: Date; endedAt: Date | null }[];
    assert.deepEqual(
      phases.map((p) => p.phase),
      PHASES,
    );
    for (const [i, p] of phases.entries()) {
      assert.ok(p.startedAt instanceof Date && p.endedAt instanceof Date, `${p.phase} has both dates`);
      assert.ok(p.endedAt >= p.startedAt, `${p.phase} ends after it starts`);
      if (i > 0)
        assert.equal(
          p.startedAt.getTime(),
          phases[i - 1]!.endedAt!.getTime(),
          `${p.phase} starts as the previous ends`,
        );
    }
    assert.deepEqual(goal.taskSummary, { COMPLETED: 32 });
    const byPhase = await db.collection<TaskDoc>("tasks").countDocuments({ goalId, phase: "QA", status: "COMPLETED" });
    assert.equal(byPhase, 4);
  });

  it("changes nothing when the same batches are applied again, whole or split differently", async () => {
    await caughtUp();
    const before = await snapshot(db);
    const checkpoints = await store.checkpoints();
    for (const [key, list] of logged()) {
      const next = checkpoints.get(key);
      assert.ok(next !== undefined, `checkpoint for ${key}`);
      const { topic, partition } = list[0]!;
      await store.apply(topic, partition, list, next);
      const half = Math.floor(list.length / 2);
      await store.apply(topic, partition, list.slice(0, half), list[half]?.offset ?? next);
      await store.apply(topic, partition, list.slice(half), next);
    }
    assert.deepEqual(await snapshot(db), before);
  });

  it("repairs an agent's derived performance when a batch comes again after the store failed before the summary", async () => {
    await caughtUp();
    const before = await snapshot(db);
    const agents = db.collection<AgentDoc>("agents");
    const worker = (await agents.find({ "performance.tasksCompleted": { $gt: 0 } }).toArray())[0];
    assert.ok(worker, "an agent with completed tasks");
    // What a store that went down between the counters and the summary leaves: counters and
    // positions written, avgCompletionMs and successRate not (seen with FerretDB stopped mid-batch).
    await agents.updateOne(
      { _id: worker._id },
      { $set: { "performance.avgCompletionMs": null, "performance.successRate": null } },
    );
    const checkpoints = await store.checkpoints();
    for (const [key, list] of logged()) {
      if (!key.startsWith("polity.tasks.events:")) continue;
      const { topic, partition } = list[0]!;
      await store.apply(topic, partition, list, checkpoints.get(key)!);
    }
    assert.deepEqual(await snapshot(db), before);
  });

  it("loses and doubles nothing when a host stops mid-way and a new one starts from rewound checkpoints", async () => {
    const { goalId } = await submitGoal(d.writer, who, { title: "DAG 2", topology: "dgm", tasks: TEN_TASK_DAG });
    await d.watch.until("three completions", () => {
      const n = d.watch.of(goalId).filter((e) => e.type === "TaskCompleted").length;
      return n >= 3 && n < 10;
    });
    await host.stop();
    // As if the data of the last batches were written but their checkpoints lost: rewind to half.
    for (const c of await db.collection<CheckpointDoc>("checkpoints").find({}).toArray())
      await db
        .collection<CheckpointDoc>("checkpoints")
        .updateOne({ _id: c._id }, { $set: { next: Math.floor(Number(c.next) / 2) } });
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted");
    host = await newHost(store);
    await caughtUp();

    const goal = await db.collection<GoalDoc>("goals").findOne({ _id: goalId });
    assert.equal(goal?.status, "COMPLETED");
    assert.deepEqual(goal?.taskSummary, { COMPLETED: 10 });
    await assertAgentsMatchLog(db);

    // A rebuild from the log into a fresh database, in other batch sizes, equals the live projection.
    const rebuilt = new StateStore(freshDb());
    await rebuilt.ensureIndexes();
    const live = await store.checkpoints();
    for (const [key, list] of logged()) {
      const { topic, partition } = list[0]!;
      for (let i = 0; i < list.length; i += 7) {
        const chunk = list.slice(i, i + 7);
        const next = i + 7 < list.length ? list[i + 7]!.offset : live.get(key)!;
        await rebuilt.apply(topic, partition, chunk, next);
      }
    }
    assert.deepEqual(await snapshot(rebuilt.db), await snapshot(db));
  });
});
