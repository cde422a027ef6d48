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
import { AgentDirectory } from "../../processors/domain/directory.js";
import { evolve, initialState } from "../../processors/domain/kernel/state.js";
import { foldModels, goalAsOf, tasksAsOf, type ModelsAsOf } from "../../projections/audit/as-of.js";
import type {
  Envelope,
  MessageMap,
  MessageTypeName,
  ModelUsage,
  Payload,
  Phase,
  ResourceKind,
  TaskSpec,
} from "../../schemas/generated/types.js";
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

  it("repairs a goal's summary when a goals batch comes again after the store failed before the summary", async () => {
    await caughtUp();
    const before = await snapshot(db);
    const goals = db.collection<GoalDoc>("goals");
    const project = await goals.findOne({ kind: "PROJECT" });
    assert.ok(project, "a project (from the test of its eight phases)");
    // What a store that went down between a goals batch's documents and their summaries leaves: the
    // goal written with its new position, its summary as an earlier batch computed it.
    await goals.updateOne({ _id: project._id }, { $set: { phaseProgress: [], tasksTotal: 0, taskSummary: {} } });
    const checkpoints = await store.checkpoints();
    for (const [key, list] of logged()) {
      if (!key.startsWith("polity.goals.events:")) continue;
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

  it("ends as a rebuild does when two stores take turns on the same partitions, each remembering what it wrote", async () => {
    await caughtUp();
    const shared = freshDb();
    const [a, b] = [new StateStore(shared), new StateStore(shared)];
    await a.ensureIndexes();
    const live = await store.checkpoints();
    let moved = 0;
    // What the host does with a batch that fails: it delivers it again.
    const apply = async (s: StateStore, events: LoggedEvent[], next: bigint) => {
      const { topic, partition } = events[0]!;
      try {
        await s.apply(topic, partition, events, next);
      } catch (e) {
        if (!/another host is projecting the same partition/.test((e as Error).message)) throw e;
        moved++;
        await s.apply(topic, partition, events, next);
      }
    };
    for (const [key, list] of logged()) {
      // In three parts: A applies the first; B the first and second; A the second, remembering
      // the first as it wrote it, which B has moved since; then each the third.
      const third = Math.ceil(list.length / 3);
      const parts = [list.slice(0, third), list.slice(third, 2 * third), list.slice(2 * third)].filter((p) => p.length);
      const next = (i: number) => parts[i + 1]?.[0]!.offset ?? live.get(key)!;
      await apply(a, parts[0]!, next(0));
      await apply(b, parts[0]!, next(0));
      for (let i = 1; i < parts.length; i++) {
        await apply(b, parts[i]!, next(i));
        await apply(a, parts[i]!, next(i));
      }
    }
    assert.ok(moved > 0, "store A found documents that store B had moved since A wrote them");
    assert.deepEqual(await snapshot(shared), await snapshot(db));
  });

  it("shows plans, planners and model usage of goals and tasks, derived from the events alone", async () => {
    const log = new HandMadeLog();
    const t0 = Date.parse("2030-03-01T08:00:00Z");
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const openai = (tokensIn: number, tokensOut: number, calls: number, latencyMs: number): ModelUsage => ({
      model: "openai:gpt-4o-mini",
      tokensIn,
      tokensOut,
      calls,
      latencyMs,
      promptDigest: `p${tokensIn}`.padEnd(64, "0"),
      answerDigest: `a${tokensOut}`.padEnd(64, "0"),
    });
    const tiny: ModelUsage = {
      model: "embedded:tiny.gguf",
      tokensIn: 300,
      tokensOut: 50,
      calls: 1,
      latencyMs: 2000,
      promptDigest: null,
      answerDigest: null,
    };
    const spec = (id: string): TaskSpec => ({
      id,
      title: `Task ${id}`,
      description: null,
      domain: "backend",
      specialization: "api",
      phase: "DESIGN",
      dependsOn: [],
      estimatedEffortMs: null,
      priority: null,
      inputs: {},
      timeoutMs: null,
    });
    const submitted = (goalId: string, kind: "GOAL" | "PROJECT", commandId: string): Payload<"GoalSubmitted"> => ({
      goalId,
      commandId,
      kind,
      title: `Planned ${goalId}`,
      description: `Planned ${goalId}`,
      priority: 5,
      constraints: {},
      deadline: null,
      domainHints: ["backend"],
      topology: "aamas",
      tasks: null,
      budget: null,
    });
    const requested = (goalId: string, phase: "DESIGN" | null, attempt: number, feedback: string[] = []) =>
      ({
        goalId,
        requestId: `${goalId}:${phase ?? "goal"}:${attempt}`,
        phase,
        attempt,
        maxAttempts: 2,
        planner: "model",
        model: "fast",
        domains: ["backend"],
        specializations: { backend: ["api"] },
        feedback,
      }) satisfies Payload<"PlanRequested">;
    const problem = 'task "x": domain "ops" is not one of the goal\'s domains (backend)';
    const proposed = (
      goalId: string,
      phase: "DESIGN" | null,
      attempt: number,
      usage: ModelUsage | null,
      answer: { tasks?: TaskSpec[]; problems?: string[]; error?: string },
    ): Payload<"PlanProposed"> => ({
      goalId,
      requestId: `${goalId}:${phase ?? "goal"}:${attempt}`,
      phase,
      attempt,
      planner: "model/v1",
      usage,
      tasks: answer.tasks ?? [],
      error: answer.error ?? null,
      accepted: !answer.error && !answer.problems,
      problems: answer.problems ?? [],
    });
    const p1 = log.goal("p1");
    const r1 = log.goal("r1");
    const p1Command = randomUUID();
    const goals = log.batch("polity.goals.events", [
      p1.event("GoalSubmitted", at(0), submitted("p1", "PROJECT", p1Command)),
      p1.event("GoalValidated", at(1), { goalId: "p1", consultedPolicies: [], warnings: [] }),
      p1.event("PhaseTransitioned", at(2), {
        goalId: "p1",
        fromPhase: null,
        toPhase: "DESIGN",
        requestId: null,
        phaseDurationMs: null,
      }),
      p1.event("PlanRequested", at(3), requested("p1", "DESIGN", 1)),
      p1.event("PlanProposed", at(4), proposed("p1", "DESIGN", 1, openai(1000, 200, 1, 800), { problems: [problem] })),
      p1.event("PlanRequested", at(5), requested("p1", "DESIGN", 2, [problem])),
      p1.event(
        "PlanProposed",
        at(6),
        proposed("p1", "DESIGN", 2, openai(1100, 250, 2, 900), { tasks: [spec("a"), spec("b")] }),
      ),
      p1.event("GoalDecomposed", at(6), {
        goalId: "p1",
        planner: "model/v1",
        phase: "DESIGN",
        tasks: [spec("a"), spec("b")],
      }),
      r1.event("GoalSubmitted", at(7), submitted("r1", "GOAL", randomUUID())),
      r1.event("GoalValidated", at(7), { goalId: "r1", consultedPolicies: [], warnings: [] }),
      r1.event("PlanRequested", at(8), requested("r1", null, 1)),
      r1.event("PlanProposed", at(9), proposed("r1", null, 1, null, { error: "the model call timed out" })),
      r1.event("GoalRejected", at(10), {
        goalId: "r1",
        commandId: randomUUID(),
        code: "PLANNING_FAILED",
        reasons: ["plan attempt 1: the model call timed out", "no valid plan after 1 attempt(s)"],
        violatedPolicies: [],
      }),
      // A second submission under p1's id is refused; p1 itself goes on.
      p1.event("GoalRejected", at(11), {
        goalId: "p1",
        commandId: randomUUID(),
        code: "DUPLICATE_GOAL",
        reasons: ['goal id "p1" is already taken'],
        violatedPolicies: [],
      }),
    ]);
    const completedA = p1.event("TaskCompleted", at(15), {
      goalId: "p1",
      taskId: "a",
      agentId: "w-openai",
      attempt: 2,
      result: "done",
      durationMs: 700,
      outputs: {},
      cost: "0.0123",
      exitCode: null,
      usage: openai(400, 120, 1, 600),
    });
    const tasks = log.batch("polity.tasks.events", [
      ...["a", "b"].map((id) =>
        p1.event("TaskCreated", at(6), {
          goalId: "p1",
          task: spec(id),
          priority: 5,
          maxAttempts: 3,
          parentTaskId: null,
          deadline: null,
        }),
      ),
      p1.event("TaskFailed", at(12), {
        goalId: "p1",
        taskId: "a",
        agentId: "w-tiny",
        attempt: 1,
        reason: "the answer was cut off at 50 tokens",
        failureKind: "INVALID_OUTPUT",
        retryable: true,
        exitCode: null,
        output: null,
        durationMs: 2100,
        usage: tiny,
      }),
      p1.event("TaskRetried", at(13), {
        goalId: "p1",
        taskId: "a",
        attempt: 2,
        maxAttempts: 3,
        reason: "cut off",
        backoffMs: 0,
        excludeAgentIds: ["w-tiny"],
      }),
      p1.event("TaskProgressed", at(14), {
        goalId: "p1",
        taskId: "a",
        agentId: "w-openai",
        attempt: 2,
        percent: 40,
        message: "generating",
        metrics: { tokensOut: 48 },
      }),
      completedA,
      // The same completion again at another offset (a producer retry outside a transaction): counted once.
      { ...completedA },
      p1.event("TaskCompleted", at(16), {
        goalId: "p1",
        taskId: "b",
        agentId: "w-sim",
        attempt: 1,
        result: "done",
        durationMs: 20,
        outputs: {},
        cost: "0.5000",
        exitCode: null,
        usage: null,
      }),
    ]);
    const target = new StateStore(freshDb());
    await target.ensureIndexes();
    for (const b of [goals, tasks]) await target.apply(b.topic, 0, b.events, b.next);

    const goalDoc = (id: string) => target.db.collection<GoalDoc>("goals").findOne({ _id: id });
    const taskDoc = (id: string) => target.db.collection<TaskDoc>("tasks").findOne({ _id: `p1/${id}` });
    const project = await goalDoc("p1");
    assert.ok(project);
    assert.equal(project.status, "RUNNING", "a refused duplicate leaves the goal as it is");
    assert.equal(project.failure, null);
    assert.equal(project.planner, "model/v1");
    assert.deepEqual(
      project.phases.map((p) => [p.phase, p.planner]),
      [["DESIGN", "model/v1"]],
    );
    assert.deepEqual(
      project.plans.map((p) => ({ ...p })),
      [
        {
          requestId: "p1:DESIGN:1",
          phase: "DESIGN",
          attempt: 1,
          maxAttempts: 2,
          status: "REFUSED",
          modelConfig: "fast",
          feedback: [],
          requestedAt: at(3),
          planner: "model/v1",
          accepted: false,
          problems: [problem],
          error: null,
          usage: openai(1000, 200, 1, 800),
          taskCount: 0,
          answeredAt: at(4),
        },
        {
          requestId: "p1:DESIGN:2",
          phase: "DESIGN",
          attempt: 2,
          maxAttempts: 2,
          status: "ACCEPTED",
          modelConfig: "fast",
          feedback: [problem],
          requestedAt: at(5),
          planner: "model/v1",
          accepted: true,
          problems: [],
          error: null,
          usage: openai(1100, 250, 2, 900),
          taskCount: 2,
          answeredAt: at(6),
        },
      ],
    );
    assert.deepEqual(project.planUsage, { tokensIn: 2100, tokensOut: 450, calls: 3, latencyMs: 1700 });
    assert.deepEqual(project.taskUsage, { tokensIn: 700, tokensOut: 170, calls: 2, latencyMs: 2600, cost: "0.0123" });
    assert.equal(project.resourceConsumption.computeCost, "0.5123");

    const a = await taskDoc("a");
    assert.ok(a);
    assert.equal(a.status, "COMPLETED");
    assert.equal(a.cost, "0.0123");
    assert.deepEqual(
      {
        model: a.model,
        tokensIn: a.tokensIn,
        tokensOut: a.tokensOut,
        modelCalls: a.modelCalls,
        modelLatencyMs: a.modelLatencyMs,
      },
      { model: "openai:gpt-4o-mini", tokensIn: 700, tokensOut: 170, modelCalls: 2, modelLatencyMs: 2600 },
      "every attempt's model calls, the failed one's too; the repeated completion once",
    );
    assert.deepEqual(a.usage, { ...openai(400, 120, 1, 600), attempt: 2, outcome: "COMPLETED", cost: "0.0123" });
    assert.deepEqual(
      a.attemptUsage.map((u) => [u.attempt, u.outcome, u.model, u.cost]),
      [
        [1, "FAILED", "embedded:tiny.gguf", null],
        [2, "COMPLETED", "openai:gpt-4o-mini", "0.0123"],
      ],
    );
    const b = await taskDoc("b");
    assert.deepEqual(
      [b?.model, b?.tokensIn, b?.modelCalls, b?.usage, b?.attemptUsage],
      [null, 0, 0, null, []],
      "a task that called no model",
    );

    const rejected = await goalDoc("r1");
    assert.equal(rejected?.status, "REJECTED", "given up after GoalSubmitted and GoalValidated");
    assert.deepEqual(rejected?.failure, {
      reason: "plan attempt 1: the model call timed out; no valid plan after 1 attempt(s)",
      code: "PLANNING_FAILED",
      failedTaskIds: [],
    });
    assert.equal(rejected?.completedAt?.getTime(), at(10).getTime());
    assert.deepEqual(
      rejected?.plans.map((p) => [p.status, p.error, p.usage]),
      [["REFUSED", "the model call timed out", null]],
    );

    // Derived from the events alone: the same events in other batches, into another database, give
    // the same documents (what npm run rebuild compares); delivered again, they change nothing.
    const before = await snapshot(target.db);
    const again = new StateStore(freshDb());
    await again.ensureIndexes();
    for (const b of [tasks, goals])
      for (let i = 0; i < b.events.length; i += 3) {
        const next = i + 3 < b.events.length ? b.events[i + 3]!.offset : b.next;
        await again.apply(b.topic, 0, b.events.slice(i, i + 3), next);
      }
    assert.deepEqual(await snapshot(again.db), before);
    for (const b of [goals, tasks]) await target.apply(b.topic, 0, b.events, b.next);
    assert.deepEqual(await snapshot(target.db), before);

    // Time travel folds the same events with the same rules: the goal and its tasks as of the end.
    let state = initialState({ keepEnded: Infinity });
    const models: ModelsAsOf = { goals: new Map(), tasks: new Map() };
    for (const e of [...goals.events, ...tasks.events]) {
      state = evolve(state, e.event);
      foldModels(models, e.event, (e.event.value as { envelope: Envelope }).envelope.occurredAt);
    }
    const asOf = { asOf: at(20), state, directory: new AgentDirectory(), events: 0, models };
    const then = goalAsOf(asOf, "p1");
    assert.deepEqual(
      [then?.planner, then?.plans, then?.planUsage, then?.taskUsage],
      [project.planner, project.plans, project.planUsage, project.taskUsage],
    );
    const thenA = tasksAsOf(asOf, "p1").find((t) => t.taskId === "a");
    assert.deepEqual([thenA?.tokensIn, thenA?.usage, thenA?.attemptUsage], [a.tokensIn, a.usage, a.attemptUsage]);
  });

  it("shows a project's phase progress and the goals' governors and mayors, from the tasks run by the hierarchy", async () => {
    await caughtUp();
    const goals = db.collection<GoalDoc>("goals");
    const project = await goals.findOne({ kind: "PROJECT", status: "COMPLETED" });
    assert.ok(project, "the eight-phase project ran before");
    const tasks = await db.collection<TaskDoc>("tasks").find({ goalId: project._id }).toArray();
    assert.deepEqual(
      project.phaseProgress?.map((p) => ({ ...p })),
      project.phases.map((p) => {
        const mine = tasks.filter((t) => t.phase === p.phase);
        return {
          phase: p.phase,
          status: "COMPLETED",
          startedAt: p.startedAt,
          endedAt: p.endedAt,
          tasksTotal: mine.length,
          tasksCompleted: mine.length,
          tasksFailed: 0,
          progress: 1,
        };
      }),
    );
    assert.equal(project.phaseProgress?.length, 8);
    assert.ok(project.phaseProgress?.every((p) => p.tasksTotal === 4));
    for (const goal of await goals.find({ status: "COMPLETED" }).toArray()) {
      const mine = await db.collection<TaskDoc>("tasks").find({ goalId: goal._id }).toArray();
      const governors = [...new Set(mine.map((t) => t.assignees.GOVERNOR ?? t.assignees.SUB_MASTER))].sort();
      const mayors = [...new Set(mine.flatMap((t) => (t.assignees.MAYOR ? [t.assignees.MAYOR] : [])))].sort();
      assert.ok(governors.length >= 2 && governors.every(Boolean), `${goal._id}: governors of its tasks`);
      assert.deepEqual([goal.governorIds, goal.mayorIds], [governors, mayors], `${goal._id}: governors and mayors`);
      assert.ok(governors.includes(goal.governorId!), `${goal._id}: lead governor`);
      if (goal.kind !== "PROJECT") assert.deepEqual(goal.phaseProgress, []);
      assert.equal(goal.resourceConsumption.apiCalls, 0, "simulated workers call no model");
      assert.deepEqual(goal.resourceConsumption.resources, [], "no RESOURCE_ALLOCATION policy: nothing requested");
    }
    // Nothing is held once every goal is done.
    for (const a of await db
      .collection<AgentDoc>("agents")
      .find({ tier: { $ne: null } })
      .toArray())
      if (a.assignedProjects !== undefined)
        assert.deepEqual([a.currentPhase, a.assignedProjects, a.currentTaskPhases], [null, [], []], String(a._id));
  });

  it("shows resource requests, allocations, violations and policy decisions, and what agents hold, derived from the events alone", async () => {
    const log = new HandMadeLog();
    const t0 = Date.parse("2030-04-01T08:00:00Z");
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const spec = (id: string, phase: Phase | null): TaskSpec => ({
      id,
      title: `Task ${id}`,
      description: null,
      domain: "backend",
      specialization: "api",
      phase,
      dependsOn: [],
      estimatedEffortMs: null,
      priority: null,
      inputs: {},
      timeoutMs: null,
    });
    const submitted = (goalId: string, kind: "GOAL" | "PROJECT"): Payload<"GoalSubmitted"> => ({
      goalId,
      commandId: randomUUID(),
      kind,
      title: goalId,
      description: goalId,
      priority: 5,
      constraints: {},
      deadline: null,
      domainHints: ["backend"],
      topology: "aamas",
      tasks: null,
      budget: null,
    });
    const q1 = log.goal("q1");
    const q2 = log.goal("q2");
    const planUsage: ModelUsage = {
      model: "openai:gpt-4o-mini",
      tokensIn: 100,
      tokensOut: 20,
      calls: 2,
      latencyMs: 300,
      promptDigest: null,
      answerDigest: null,
    };
    const goals = log.batch("polity.goals.events", [
      q1.event("GoalSubmitted", at(0), submitted("q1", "PROJECT")),
      q1.event("PhaseTransitioned", at(1), {
        goalId: "q1",
        fromPhase: null,
        toPhase: "DESIGN",
        requestId: null,
        phaseDurationMs: null,
      }),
      q1.event("PlanProposed", at(2), {
        goalId: "q1",
        requestId: "q1:DESIGN:1",
        phase: "DESIGN",
        attempt: 1,
        planner: "model/v1",
        usage: planUsage,
        tasks: [spec("d1", "DESIGN")],
        error: null,
        accepted: true,
        problems: [],
      }),
      q1.event("PhaseTransitioned", at(20), {
        goalId: "q1",
        fromPhase: "DESIGN",
        toPhase: "DEVELOPMENT",
        requestId: null,
        phaseDurationMs: 19_000,
      }),
      q2.event("GoalSubmitted", at(3), submitted("q2", "GOAL")),
    ]);
    const created = (g: typeof q1, goalId: string, id: string, phase: Phase | null) =>
      g.event("TaskCreated", at(3), {
        goalId,
        task: spec(id, phase),
        priority: 5,
        maxAttempts: 3,
        parentTaskId: null,
        deadline: null,
      });
    const assigned = (
      g: typeof q1,
      goalId: string,
      id: string,
      agentId: string,
      tier: "GOVERNOR" | "MAYOR" | "WORKER",
    ) =>
      g.event("TaskAssigned", at(4), {
        goalId,
        taskId: id,
        assigneeId: agentId,
        assigneeTier: tier,
        assignedBy: "test",
        attempt: 1,
        task: spec(id, null),
        priority: 5,
        timeoutMs: null,
      });
    const tasks = log.batch("polity.tasks.events", [
      created(q1, "q1", "d1", "DESIGN"),
      created(q1, "q1", "d2", "DESIGN"),
      created(q1, "q1", "d3", "DESIGN"),
      assigned(q1, "q1", "d1", "gov-a", "GOVERNOR"),
      assigned(q1, "q1", "d2", "gov-a", "GOVERNOR"),
      assigned(q1, "q1", "d3", "gov-b", "GOVERNOR"),
      assigned(q1, "q1", "d1", "mayor-1", "MAYOR"),
      assigned(q1, "q1", "d2", "mayor-1", "MAYOR"),
      assigned(q1, "q1", "d3", "mayor-2", "MAYOR"),
      assigned(q1, "q1", "d1", "w1", "WORKER"),
      assigned(q1, "q1", "d3", "w3", "WORKER"),
      q1.event("TaskStarted", at(5), { goalId: "q1", taskId: "d3", agentId: "w3", attempt: 1, executor: "model" }),
      q1.event("TaskCompleted", at(6), {
        goalId: "q1",
        taskId: "d1",
        agentId: "w1",
        attempt: 1,
        result: "done",
        durationMs: 900,
        outputs: {},
        cost: "0.2500",
        exitCode: null,
        usage: { ...planUsage, calls: 3 },
      }),
      q1.event("TaskCancelled", at(7), {
        goalId: "q1",
        taskId: "d2",
        cause: "MANUAL",
        reason: "not needed",
        previousStatus: "ASSIGNED",
        agentId: null,
      }),
      created(q1, "q1", "v1", "DEVELOPMENT"),
      assigned(q1, "q1", "v1", "gov-a", "GOVERNOR"),
      created(q2, "q2", "x", null),
      assigned(q2, "q2", "x", "gov-a", "GOVERNOR"),
    ]);
    const request = (taskId: string, kind: ResourceKind, amount: string, requesterId = "gov-a") =>
      q1.event("ResourceRequested", at(4), {
        requestId: `res-q1-${taskId}-${kind}`,
        goalId: "q1",
        taskId,
        requesterId,
        requesterTier: "GOVERNOR",
        kind,
        amount,
        unit: kind === "BUDGET" ? "billing-currency" : kind === "API_QUOTA" ? "calls" : "units",
        durationMs: null,
        priority: 5,
        justification: "test",
      });
    const allocate = (taskId: string, kind: ResourceKind, amount: string, requesterId = "gov-a") =>
      q1.event("ResourceAllocated", at(5), {
        requestId: `res-q1-${taskId}-${kind}`,
        allocationId: `alloc-${taskId}-${kind}`,
        goalId: "q1",
        taskId,
        requesterId,
        kind,
        requestedAmount: amount,
        grantedAmount: amount,
        unit: kind === "BUDGET" ? "billing-currency" : kind === "API_QUOTA" ? "calls" : "units",
        expiresAt: null,
        consultedPolicies: [{ policyId: "quota", version: 1 }],
      });
    const budgetD1 = allocate("d1", "BUDGET", "1.0000");
    const violation = q1.event("ConstitutionalViolationDetected", at(9), {
      violationId: "v-1",
      goalId: "q1",
      taskId: "d3",
      agentId: "w3",
      policyId: "no-secrets",
      policyVersion: 2,
      principle: "no secrets in outputs",
      description: "printed a token",
      severity: "CRITICAL",
      enforcement: "FLAGGED",
    });
    const evaluated = (decision: "ALLOW" | "DENY") =>
      q1.event("PolicyEvaluated", at(8), {
        goalId: "q1",
        subject: { type: "ResourceRequested", id: "r", agentId: null },
        category: "RESOURCE_ALLOCATION",
        policyId: "quota",
        policyVersion: 1,
        decision,
        consultedPolicies: [],
        reasons: [],
      });
    const governance = log.batch("polity.governance.events", [
      ...(["BUDGET", "API_QUOTA", "AGENT_CAPACITY"] as const).flatMap((kind) => [request("d1", kind, "1.0000")]),
      request("d1", "COMPUTATIONAL", "30.0000"),
      budgetD1,
      allocate("d1", "API_QUOTA", "1.0000"),
      allocate("d1", "AGENT_CAPACITY", "1.0000"),
      allocate("d1", "COMPUTATIONAL", "30.0000"),
      // The same answer again at another offset: counted once, for the goal and for the agent.
      { ...budgetD1 },
      request("d2", "BUDGET", "1.0000"),
      allocate("d2", "BUDGET", "1.0000"),
      // Answered without a request this model saw: the answer says what was asked.
      allocate("d3", "BUDGET", "1.0000", "gov-b"),
      request("v1", "BUDGET", "1.0000"),
      q1.event("ResourceDenied", at(6), {
        requestId: "res-q1-v1-BUDGET",
        goalId: "q1",
        taskId: "v1",
        requesterId: "gov-a",
        kind: "BUDGET",
        requestedAmount: "1.0000",
        unit: "billing-currency",
        availableAmount: "0.0000",
        reasons: ["the goal's budget is spent"],
        consultedPolicies: [],
      }),
      evaluated("ALLOW"),
      evaluated("ALLOW"),
      evaluated("DENY"),
      violation,
      { ...violation },
    ]);
    const target = new StateStore(freshDb());
    await target.ensureIndexes();
    for (const b of [goals, tasks, governance]) await target.apply(b.topic, 0, b.events, b.next);
    const goalDoc = (id: string) => target.db.collection<GoalDoc>("goals").findOne({ _id: id });
    const agentDoc = (id: string) => target.db.collection<AgentDoc>("agents").findOne({ _id: id });

    const q = await goalDoc("q1");
    assert.ok(q);
    assert.deepEqual(
      [q.governorId, q.governorIds, q.mayorIds],
      ["gov-a", ["gov-a", "gov-b"], ["mayor-1", "mayor-2"]],
      "gov-a holds three tasks of q1, gov-b one",
    );
    assert.equal(q.resourceConsumption.apiCalls, 5, "the plan's 2 model calls and d1's 3");
    assert.deepEqual(q.resourceConsumption.resources, [
      {
        kind: "AGENT_CAPACITY",
        unit: "units",
        requests: 1,
        allocated: 1,
        denied: 0,
        granted: "1.0000",
        held: "0.0000",
      },
      { kind: "API_QUOTA", unit: "calls", requests: 1, allocated: 1, denied: 0, granted: "1.0000", held: "3.0000" },
      // d1 completed (its cost), d2 cancelled (nothing), d3 running (its grant), v1 denied.
      {
        kind: "BUDGET",
        unit: "billing-currency",
        requests: 4,
        allocated: 3,
        denied: 1,
        granted: "3.0000",
        held: "1.2500",
      },
      {
        kind: "COMPUTATIONAL",
        unit: "units",
        requests: 1,
        allocated: 1,
        denied: 0,
        granted: "30.0000",
        held: "30.0000",
      },
    ]);
    assert.deepEqual(
      q.allocations?.map((a) => [a.requestId, a.status, a.granted, a.requesterId, a.reasons]),
      [
        ["res-q1-d1-BUDGET", "ALLOCATED", "1.0000", "gov-a", []],
        ["res-q1-d1-API_QUOTA", "ALLOCATED", "1.0000", "gov-a", []],
        ["res-q1-d1-AGENT_CAPACITY", "ALLOCATED", "1.0000", "gov-a", []],
        ["res-q1-d1-COMPUTATIONAL", "ALLOCATED", "30.0000", "gov-a", []],
        ["res-q1-d2-BUDGET", "ALLOCATED", "1.0000", "gov-a", []],
        ["res-q1-d3-BUDGET", "ALLOCATED", "1.0000", "gov-b", []],
        ["res-q1-v1-BUDGET", "DENIED", null, "gov-a", ["the goal's budget is spent"]],
      ],
    );
    assert.deepEqual(q.policyDecisions, { ALLOW: 2, DENY: 1 });
    assert.deepEqual(
      q.violations?.map((v) => [v.violationId, v.policyId, v.policyVersion, v.enforcement, v.at.getTime()]),
      [["v-1", "no-secrets", 2, "FLAGGED", at(9).getTime()]],
    );
    const design = { startedAt: at(1), endedAt: at(20) };
    assert.deepEqual(
      q.phaseProgress?.map((p) => ({ ...p })),
      ["INITIATION", "FEASIBILITY", "REQUIREMENTS", "DESIGN", "DEVELOPMENT", "QA", "DEPLOYMENT", "LAUNCH"].map(
        (phase) =>
          phase === "DESIGN"
            ? {
                phase,
                status: "COMPLETED",
                ...design,
                tasksTotal: 3,
                tasksCompleted: 1,
                tasksFailed: 0,
                progress: 1 / 3,
              }
            : phase === "DEVELOPMENT"
              ? {
                  phase,
                  status: "ACTIVE",
                  startedAt: at(20),
                  endedAt: null,
                  tasksTotal: 1,
                  tasksCompleted: 0,
                  tasksFailed: 0,
                  progress: 0,
                }
              : {
                  phase,
                  status: "PENDING",
                  startedAt: null,
                  endedAt: null,
                  tasksTotal: 0,
                  tasksCompleted: 0,
                  tasksFailed: 0,
                  progress: 0,
                },
      ),
    );
    assert.deepEqual((await goalDoc("q2"))?.phaseProgress, [], "a goal has no phases");

    // Agents: what they hold now (phase and projects) and what they were allocated.
    const holding = async (id: string) => {
      const a = await agentDoc(id);
      return [a?.currentPhase, a?.assignedProjects];
    };
    assert.deepEqual(await holding("gov-a"), ["DEVELOPMENT", ["q1", "q2"]], "v1 (DEVELOPMENT) and q2's x (no phase)");
    assert.deepEqual(await holding("gov-b"), ["DESIGN", ["q1"]]);
    assert.deepEqual(await holding("mayor-1"), [null, []], "d1 completed, d2 cancelled");
    assert.deepEqual(await holding("mayor-2"), ["DESIGN", ["q1"]]);
    assert.deepEqual(await holding("w1"), [null, []]);
    assert.deepEqual(await holding("w3"), ["DESIGN", ["q1"]]);
    assert.deepEqual((await agentDoc("gov-a"))?.resourceAllocation, {
      AGENT_CAPACITY: { unit: "units", allocations: 1, grantedTenThousandths: 10_000, granted: "1.0000" },
      API_QUOTA: { unit: "calls", allocations: 1, grantedTenThousandths: 10_000, granted: "1.0000" },
      BUDGET: { unit: "billing-currency", allocations: 2, grantedTenThousandths: 20_000, granted: "2.0000" },
      COMPUTATIONAL: { unit: "units", allocations: 1, grantedTenThousandths: 300_000, granted: "30.0000" },
    });
    assert.deepEqual((await agentDoc("gov-b"))?.resourceAllocation, {
      BUDGET: { unit: "billing-currency", allocations: 1, grantedTenThousandths: 10_000, granted: "1.0000" },
    });

    // Derived from the events alone: other batches, topics in another order, the same documents.
    const before = await snapshot(target.db);
    const again = new StateStore(freshDb());
    await again.ensureIndexes();
    for (const b of [governance, tasks, goals])
      for (let i = 0; i < b.events.length; i += 2) {
        const next = i + 2 < b.events.length ? b.events[i + 2]!.offset : b.next;
        await again.apply(b.topic, 0, b.events.slice(i, i + 2), next);
      }
    assert.deepEqual(await snapshot(again.db), before);
    // Delivered again: nothing changes. And summaries lost after their counters were written (a store
    // down mid-batch) come back when the batch is delivered again.
    for (const b of [goals, tasks, governance]) await target.apply(b.topic, 0, b.events, b.next);
    assert.deepEqual(await snapshot(target.db), before);
    await target.db
      .collection<AgentDoc>("agents")
      .updateOne(
        { _id: "gov-a" },
        { $unset: { currentPhase: "", assignedProjects: "", "resourceAllocation.BUDGET.granted": "" } },
      );
    await target.db
      .collection<GoalDoc>("goals")
      .updateOne(
        { _id: "q1" },
        { $unset: { phaseProgress: "", governorIds: "", "resourceConsumption.resources": "" } },
      );
    for (const b of [tasks, governance]) await target.apply(b.topic, 0, b.events, b.next);
    assert.deepEqual(await snapshot(target.db), before);
  });
});

/** Events as a projection sees them, built by hand: each goal's events in its own stream, offsets per topic from zero. */
class HandMadeLog {
  private readonly offsets = new Map<string, bigint>();
  private readonly versions = new Map<string, number>();

  /** A builder of one goal's events (tenant acme unless given). */
  goal(goalId: string, tenantId = "acme") {
    return {
      event: <T extends MessageTypeName>(type: T, occurredAt: Date, payload: Payload<T>): PolityEvent => {
        const version = (this.versions.get(goalId) ?? 0) + 1;
        this.versions.set(goalId, version);
        const envelope: Envelope = {
          eventId: randomUUID(),
          type,
          occurredAt,
          tenantId,
          correlationId: goalId,
          causationId: null,
          actor: { id: "test", tier: "SYSTEM" },
          aggregate: { type: "GOAL", id: goalId, version },
        };
        return { type, value: { envelope, ...payload } as MessageMap[T] } as PolityEvent;
      },
    };
  }

  batch(topic: string, events: PolityEvent[]): { topic: string; events: LoggedEvent[]; next: bigint } {
    let offset = this.offsets.get(topic) ?? 0n;
    const logged = events.map((event) => ({ event, topic, partition: 0, offset: offset++, timestamp: new Date(0) }));
    this.offsets.set(topic, offset);
    return { topic, events: logged, next: offset };
  }
}
