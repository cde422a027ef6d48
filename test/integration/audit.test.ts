/**
 * Audit on the real stack: a goal with failures, escalations and a policy amendment mid-way is
 * replayed from Kafka into its causal timeline (table, JSON lines, the CLI), into its state as of a
 * time, and its events' hash chain is verified; copies of its topic with one record altered,
 * deleted or moved are caught at the right position.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { KafkaMessage } from "kafkajs";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { CHAIN_HEADER, headerText } from "../../producers/chain.js";
import type { OutgoingMessage } from "../../producers/writer.js";
import { amendPolicy, definePolicy, submitGoal } from "../../producers/commands.js";
import { goalAsOf, snapshotAsOf, tasksAsOf } from "../../projections/audit/as-of.js";
import { partitionOfKey, scanLog, type LogRecord } from "../../projections/audit/log.js";
import { goalTimeline, timelineJsonLines, timelineTable } from "../../projections/audit/timeline.js";
import { verifyTopics } from "../../projections/audit/verify.js";
import { physicalTopic, TOPICS } from "../../schemas/catalog.js";
import type { MessageTypeName, ModelUsage, Payload } from "../../schemas/generated/types.js";
import { deployment, task, type TestDeployment } from "../support/hierarchy.js";

const user = { tenantId: "acme", userId: "alice" };
const admin = { tenantId: "acme", userId: "root" };
const root = path.resolve(import.meta.dirname, "../..");

/** One domain whose workers run each task's own shell command; 2 attempts per delivery, 2 deliveries. */
const topology: TopologyConfig = {
  simulated: { seed: 3, meanDurationMs: 0, failureRate: 0 },
  topologies: {
    aamas: {
      retries: { worker: 2, domain: 2 },
      domains: {
        ops: {
          mayors: 1,
          workers: {
            script: { count: 2, capacity: 1, executor: "shell", shell: { command: "true", timeoutMs: 10_000 } },
          },
        },
      },
    },
  },
};

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "infra/cli.ts"), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe("audit: timeline, time travel and tamper evidence", () => {
  let d: TestDeployment;
  let h: RunningHierarchy;
  let goalId: string;
  let amendedAt: Date;

  before(async () => {
    d = await deployment(topology, "audit", []);
    h = await d.start();
    await definePolicy(d.writer, admin, {
      policyId: "budgets",
      name: "Task budgets",
      category: "RESOURCE_ALLOCATION",
      description: "every task is paid for",
      rules: JSON.stringify({ taskBudget: "1.0000" }),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
    });
    await h.policies.known("budgets", 1);
    // build succeeds after 2 s; flaky (after build) always fails: 4 attempts, escalated to the top.
    const submitted = await submitGoal(d.writer, user, {
      title: "Audited goal",
      tasks: [
        task("build", "ops", "script", [], { inputs: { command: "sleep 2; echo built" } }),
        task("flaky", "ops", "script", ["build"], { inputs: { command: "echo broken >&2; exit 3" } }),
      ],
    });
    goalId = submitted.goalId;
    await d.watch.until(
      "build running",
      () => d.watch.of(goalId).some((e) => e.type === "TaskStarted" && e.value.taskId === "build"),
      60_000,
    );
    const amended = await amendPolicy(d.writer, admin, {
      policyId: "budgets",
      expectedVersion: 1,
      rules: JSON.stringify({ taskBudget: "2.0000" }),
      description: null,
      appliesToTiers: null,
      domains: null,
      precedence: null,
      rationale: "tasks got dearer",
      effectiveFrom: null,
    });
    amendedAt = amended.envelope.occurredAt;
    await h.policies.known("budgets", 2);
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalFailed", JSON.stringify(end.value));
  });
  after(async () => {
    await d?.stop();
  });

  it("replays the goal's causal timeline with the amendment and the policy version of each decision", async () => {
    const progress: number[] = [];
    const timeline = await goalTimeline({
      kafka: d.kafka,
      codec: d.codec,
      goalId,
      topicPrefix: d.prefix,
      onProgress: (p) => progress.push(p.read),
    });
    const e = timeline.entries;
    const types = e.map((x) => x.type);
    assert.equal(types[0], "SubmitGoal");
    assert.equal(types.filter((t) => t === "GoalFailed").length, 1);
    assert.equal(types.filter((t) => t === "TaskFailed").length, 4);
    assert.ok(types.filter((t) => t === "EscalationRaised").length >= 2, types.join(","));
    assert.equal(
      types.filter((t) => t === "EscalationRaised").length,
      types.filter((t) => t === "EscalationResolved").length,
    );
    assert.equal(types.filter((t) => t === "TaskCompleted").length, 1);
    assert.ok(progress.length > 0, "progress was reported");

    // Every cause is an earlier entry, and every link is mirrored.
    for (const x of e) {
      if (x.causedBy !== null) {
        assert.ok(x.causedBy < x.seq, `#${x.seq} ${x.type} is caused by the later #${x.causedBy}`);
        assert.ok(e[x.causedBy - 1]!.caused.includes(x.seq));
      }
    }
    assert.equal(e[0]!.causedBy, null);
    // An executor's outcome is caused by its attempt's TaskStarted.
    for (const x of e.filter((x) => x.type === "TaskCompleted" || x.type === "TaskFailed"))
      assert.equal(x.causedBy && e[x.causedBy - 1]!.type, "TaskStarted", `#${x.seq} ${x.type}`);
    const failedGoal = e.find((x) => x.type === "GoalFailed")!;
    assert.notEqual(failedGoal.causedBy, null, "GoalFailed names its cause");

    // The amendment sits between the two allocations, and each allocation names its version.
    const amendment = e.find((x) => x.type === "PolicyAmended");
    assert.ok(amendment, "the amendment is on the timeline");
    assert.match(amendment.summary, /^budgets@v2 RESOURCE_ALLOCATION/);
    const evaluations = e.filter((x) => x.type === "PolicyEvaluated");
    assert.deepEqual(
      evaluations.map((x) => [x.policy?.decision, x.policy?.decidedBy]),
      [
        ["ALLOW", "budgets@v1"],
        ["ALLOW", "budgets@v2"],
      ],
    );
    assert.ok(evaluations[0]!.seq < amendment.seq && amendment.seq < evaluations[1]!.seq);
    const allocations = e.filter((x) => x.type === "ResourceAllocated");
    assert.deepEqual(
      allocations.map((x) => [x.summary.match(/taskId=(\w+)/)?.[1], x.decidedUnder]),
      [
        ["build", ["budgets@v1"]],
        ["flaky", ["budgets@v2"]],
      ],
    );

    const table = timelineTable(timeline);
    assert.match(table, /policy RESOURCE_ALLOCATION ALLOW by budgets@v2; consulted budgets@v2/);
    assert.match(table, /decided under budgets@v1/);
    const lines = timelineJsonLines(timeline).split("\n");
    assert.equal(lines.length, e.length);
    assert.equal(JSON.parse(lines[0]!).type, "SubmitGoal");

    // From a time: only what happened from the amendment on (offsets for times).
    const later = await goalTimeline({
      kafka: d.kafka,
      codec: d.codec,
      goalId,
      topicPrefix: d.prefix,
      from: amendedAt,
    });
    assert.ok(later.entries.length > 0 && later.entries.length < e.length);
    assert.ok(!later.entries.some((x) => x.type === "SubmitGoal"));
    assert.ok(later.entries.some((x) => x.type === "GoalFailed"));
  });

  it("prints the timeline through the CLI, as a table and as JSON lines, with progress", async () => {
    const env = { POLITY_TOPIC_PREFIX: d.prefix };
    const table = await cli(["audit", "goal", goalId], env);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, new RegExp(`Timeline of goal ${goalId}`));
    assert.match(table.out, /GoalFailed/);
    assert.match(table.err, /\[audit\] goal .*record\(s\) read, 100%/);
    const json = await cli(["audit", "goal", goalId, "--json"], env);
    assert.equal(json.code, 0, json.err);
    const parsed = json.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; goalId: string });
    assert.ok(parsed.every((p) => p.goalId === goalId));
    assert.ok(parsed.some((p) => p.type === "GoalFailed"));
    const missing = await cli(["audit", "goal", "no-such-goal"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no event of goal no-such-goal/);
  });

  it("computes the goal's state as of a time by replaying evolve", async () => {
    const timeline = await goalTimeline({ kafka: d.kafka, codec: d.codec, goalId, topicPrefix: d.prefix });
    const buildDone = timeline.entries.find((x) => x.type === "TaskCompleted")!;
    const at = new Date(buildDone.occurredAt);
    const then = await snapshotAsOf({ kafka: d.kafka, codec: d.codec, at, goalId, topicPrefix: d.prefix });
    const goal = goalAsOf(then, goalId);
    assert.equal(goal?.status, "RUNNING");
    const tasks = tasksAsOf(then, goalId);
    assert.deepEqual(
      tasks.map((t) => [t.taskId, t.status]),
      [
        ["build", "COMPLETED"],
        ["flaky", "PENDING"],
      ],
    );
    const before = await snapshotAsOf({
      kafka: d.kafka,
      codec: d.codec,
      at: new Date(new Date(timeline.entries[0]!.occurredAt).getTime() - 1),
      goalId,
      topicPrefix: d.prefix,
    });
    assert.equal(goalAsOf(before, goalId), null);
    const now = await snapshotAsOf({ kafka: d.kafka, codec: d.codec, at: new Date(), goalId, topicPrefix: d.prefix });
    assert.equal(goalAsOf(now, goalId)?.status, "FAILED");

    const whole = await snapshotAsOf({ kafka: d.kafka, codec: d.codec, at, topicPrefix: d.prefix });
    assert.ok(whole.directory.all().some((a) => a.agentId === "aamas-mayor-ops-1"));
  });

  it("verifies the hash chain of every topic, and catches an altered, a deleted and a moved record on copies", async () => {
    const topics = TOPICS.filter((t) => t.name !== "polity.deadletters").map((t) => physicalTopic(t.name, d.prefix));
    const clean = await verifyTopics(d.kafka, topics);
    assert.deepEqual(clean.problems, []);
    assert.ok(clean.records > 20 && clean.sealed === clean.records, JSON.stringify({ ...clean, problems: [] }));
    assert.ok(clean.linked > 0);

    // The goal's partition of the tasks topic, record by record.
    const tasksTopic = physicalTopic("polity.tasks.events", d.prefix);
    const partition = partitionOfKey(goalId, 6);
    const records: LogRecord[] = [];
    await scanLog(d.kafka, {
      topics: [tasksTopic],
      partitions: new Map([[tasksTopic, [partition]]]),
      onBatch: (batch) => void records.push(...batch),
    });
    // Links: a record and the earlier one of its stream it links to. Each copy below breaks one.
    const hashOf = (r: LogRecord) => headerText(r.headers, CHAIN_HEADER.hash);
    const links: { from: number; to: number; stream: string }[] = [];
    records.forEach((r, i) => {
      const prev = headerText(r.headers, CHAIN_HEADER.prev);
      const j = prev ? records.findIndex((x) => hashOf(x) === prev) : -1;
      if (j >= 0) links.push({ from: i, to: j, stream: headerText(r.headers, CHAIN_HEADER.aggregate)! });
    });
    assert.ok(links.length >= 3, `${links.length} link(s)`);
    const [a, b, c] = [links[0], links[Math.floor(links.length / 2)], links.at(-1)];

    const admin = d.kafka.admin();
    await admin.connect();
    const producer = d.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const copy = async (name: string, list: (LogRecord & { value: Buffer | null })[]) => {
      const topic = `${d.prefix}${name}.polity.tasks.events`;
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      for (const r of list)
        await producer.send({
          topic,
          messages: [{ key: r.key, value: r.value, headers: r.headers as KafkaMessage["headers"] }],
        });
      return topic;
    };
    try {
      // Altered: one byte of a linked record's payload (the schema id is left alone).
      const altered = records.map((r, i) => {
        if (i !== a!.to) return r;
        const value = Buffer.from(r.value!);
        value[value.length - 1] = value[value.length - 1]! ^ 0x01;
        return { ...r, value };
      });
      const alteredReport = await verifyTopics(d.kafka, [await copy("altered", altered)]);
      assert.deepEqual(
        alteredReport.problems.map((p) => [p.kind, p.offset]),
        [["ALTERED", String(a!.to)]],
      );

      // Deleted: the record a later one links to; the gap is reported at the later one.
      const deleted = records.filter((_, i) => i !== b!.to);
      const deletedReport = await verifyTopics(d.kafka, [await copy("deleted", deleted)]);
      const gapAt = b!.from - 1; // one record earlier in the copy
      assert.deepEqual(
        deletedReport.problems.filter((p) => p.aggregate === b!.stream).map((p) => [p.kind, p.offset]),
        [["GAP", String(gapAt)]],
      );
      assert.ok(deletedReport.problems.every((p) => p.kind === "GAP"));

      // Moved: a record put before the one it links to.
      const moved = [...records];
      const [taken] = moved.splice(c!.from, 1);
      moved.splice(c!.to, 0, taken!);
      const movedReport = await verifyTopics(d.kafka, [await copy("moved", moved)]);
      assert.deepEqual(
        movedReport.problems.filter((p) => p.kind === "REORDERED").map((p) => [p.offset, p.aggregate]),
        [[String(c!.to), c!.stream]],
      );
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }

    // The CLI says so with its exit code.
    const ok = await cli(["audit", "verify", "--topics", topics.join(",")], { POLITY_TOPIC_PREFIX: d.prefix });
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.match(ok.out, /OK: every hash and link checks/);
    const bad = await cli(["audit", "verify", "--topics", `${d.prefix}altered.polity.tasks.events`], {
      POLITY_TOPIC_PREFIX: d.prefix,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.out, /ALTERED .*altered\.polity\.tasks\.events\[0\]@/);
  });
});

describe("audit: the planning of a goal and its model calls on the timeline", () => {
  let d: TestDeployment;
  before(async () => {
    // Topics and a writer only: the events are written by hand, and no hierarchy reacts to them.
    d = await deployment(topology, "audit-plans", []);
  });
  after(async () => {
    await d?.stop();
  });

  it("shows each plan request with its attempt, model and feedback, and each answer with its digest, acceptance and problems", async () => {
    const goalId = `plan-${randomUUID().slice(0, 8)}`;
    const t0 = Date.now() - 60_000;
    const problem = 'task "x": domain "ops" is not one of the goal\'s domains (backend)';
    const usage = (tokensIn: number, tokensOut: number): ModelUsage => ({
      model: "openai:gpt-4o-mini",
      tokensIn,
      tokensOut,
      calls: 1,
      latencyMs: 800,
      promptDigest: `${tokensIn}`.padEnd(64, "c"),
      answerDigest: `${tokensOut}`.padEnd(64, "d"),
    });
    const actor = { id: "aamas-president", tier: "PRESIDENT" as const };
    let version = 0;
    let last: string | null = null;
    /** Writes one message of the goal, caused by the previous one. */
    const write = async <T extends MessageTypeName>(type: T, payload: Payload<T>, task?: string) => {
      const [sent] = await d.writer.send([
        {
          type,
          payload,
          context: {
            tenantId: "acme",
            correlationId: goalId,
            causationId: last,
            actor,
            aggregate: task ? { type: "TASK", id: task, version: 1 } : { type: "GOAL", id: goalId, version: ++version },
            occurredAt: new Date(t0 + version * 1000),
          },
        } as OutgoingMessage,
      ]);
      last = sent!.envelope.eventId;
    };
    const request = (attempt: number, feedback: string[]): Payload<"PlanRequested"> => ({
      goalId,
      requestId: `${goalId}:goal:${attempt}`,
      phase: null,
      attempt,
      maxAttempts: 2,
      planner: "model",
      model: "fast",
      domains: ["backend"],
      specializations: { backend: ["api"] },
      feedback,
    });
    const spec = task("a", "backend", "api");
    await write("GoalValidated", { goalId, consultedPolicies: [], warnings: [] });
    await write("PlanRequested", request(1, []));
    await write("PlanProposed", {
      goalId,
      requestId: `${goalId}:goal:1`,
      phase: null,
      attempt: 1,
      planner: "model/v1",
      usage: usage(1000, 200),
      tasks: [task("x", "ops", null)],
      error: null,
      accepted: false,
      problems: [problem],
    });
    await write("PlanRequested", request(2, [problem]));
    await write("PlanProposed", {
      goalId,
      requestId: `${goalId}:goal:2`,
      phase: null,
      attempt: 2,
      planner: "model/v1",
      usage: usage(1100, 250),
      tasks: [spec],
      error: null,
      accepted: true,
      problems: [],
    });
    await write("GoalDecomposed", { goalId, planner: "model/v1", phase: null, tasks: [spec] });
    await write(
      "TaskCompleted",
      {
        goalId,
        taskId: "a",
        agentId: "aamas-worker-backend-api-1",
        attempt: 1,
        result: "done",
        durationMs: 900,
        outputs: {},
        cost: "0.0123",
        exitCode: null,
        usage: usage(400, 120),
      },
      "a",
    );

    const timeline = await goalTimeline({ kafka: d.kafka, codec: d.codec, goalId, topicPrefix: d.prefix });
    const e = timeline.entries;
    assert.deepEqual(
      e.map((x) => x.type),
      [
        "GoalValidated",
        "PlanRequested",
        "PlanProposed",
        "PlanRequested",
        "PlanProposed",
        "GoalDecomposed",
        "TaskCompleted",
      ],
    );
    const [, firstAsk, refused, secondAsk, accepted, decomposed, completed] = e;
    assert.deepEqual(secondAsk!.plan, {
      requestId: `${goalId}:goal:2`,
      phase: null,
      attempt: 2,
      maxAttempts: 2,
      planner: "model",
      model: "fast",
      feedback: [problem],
      accepted: null,
      problems: [],
      error: null,
      taskCount: null,
    });
    assert.equal(firstAsk!.summary, "attempt=1/2 planner=model model=fast");
    assert.match(secondAsk!.summary, /^attempt=2\/2 planner=model model=fast feedback=task "x": domain "ops"/);
    assert.equal(
      refused!.summary,
      `attempt=1 planner=model/v1 accepted=false tasks=1 problems=${problem} ` +
        `model=openai:gpt-4o-mini tokens=1000/200 calls=1 latencyMs=800 answer=200ddddddddd`,
    );
    assert.deepEqual(refused!.usage, usage(1000, 200));
    assert.deepEqual(
      [refused!.plan?.accepted, refused!.plan?.problems, refused!.plan?.model, refused!.causedBy],
      [false, [problem], "openai:gpt-4o-mini", firstAsk!.seq],
      "the answer names the model that answered and is caused by its request",
    );
    assert.deepEqual([accepted!.plan?.accepted, accepted!.plan?.taskCount], [true, 1]);
    assert.equal(decomposed!.plan, null);
    assert.match(
      completed!.summary,
      /model=openai:gpt-4o-mini tokens=400\/120 calls=1 latencyMs=800 answer=120ddddddddd$/,
    );
    assert.deepEqual(completed!.usage, usage(400, 120));

    const table = timelineTable(timeline);
    assert.match(table, new RegExp(`plan request ${goalId}:goal:2: attempt 2 of 2 to model \\(model fast\\)`));
    assert.match(table, /\n\s+feedback: task "x": domain "ops"/);
    assert.match(
      table,
      new RegExp(
        `plan refused \\(${goalId}:goal:1\\) from model/v1: 1 task\\(s\\); prompt 1000cccccccc, answer 200ddddddddd`,
      ),
    );
    assert.match(table, /\n\s+problem: task "x": domain "ops"/);
    assert.match(table, new RegExp(`plan accepted \\(${goalId}:goal:2\\) from model/v1: 1 task\\(s\\)`));
    const json = timelineJsonLines(timeline)
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; plan: unknown; usage: unknown });
    assert.deepEqual(json[2]!.usage, usage(1000, 200));
    assert.equal((json[3]!.plan as { attempt: number }).attempt, 2);
  });
});
