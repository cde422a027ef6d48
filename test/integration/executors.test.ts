/**
 * How workers run tasks: the shell executor on the real /bin/sh, then a hierarchy on the real
 * broker and registry where one task runs as a shell command and the next is done by an agent
 * outside the platform (processors/examples/external-agent.ts), which also registers itself and
 * never reports an attempt twice, even when it reads its whole log again.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { kafkaClient } from "../../lib/kafka.js";
import { shellExecutor, type Execution, type Outcome } from "../../processors/executors.js";
import { startExternalAgent, type RunningExternalAgent } from "../../processors/examples/external-agent.js";
import { startHierarchy, type RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { submitGoal } from "../../producers/commands.js";
import { EventWriter } from "../../producers/writer.js";
import { TOPICS, physicalTopic } from "../../schemas/catalog.js";
import { Codec } from "../../schemas/codec.js";
import type { MessageMap, TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

function spec(id: string, fields: Partial<TaskSpec> = {}): TaskSpec {
  return {
    id,
    title: `task ${id}`,
    description: null,
    domain: "ops",
    specialization: null,
    phase: null,
    dependsOn: [],
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
    ...fields,
  };
}

function execution(inputs: Record<string, string> = {}, attempt = 1): Execution {
  return {
    goalId: "goal-shell",
    taskId: `t-${randomUUID().slice(0, 8)}`,
    attempt,
    agentId: "w1",
    dependencies: [],
    spec: spec("t", { inputs }),
  };
}

describe("shell executor on the real shell", () => {
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), "polity-shell-"));
  after(() => fs.rmSync(workRoot, { recursive: true, force: true }));
  const run = (
    command: string,
    e: Execution = execution(),
    timeoutMs?: number,
    signal = new AbortController().signal,
  ) => shellExecutor({ command, ...(timeoutMs ? { timeoutMs } : {}) }, workRoot).run(e, signal);

  test("exit 0 completes with the output, its last line as result, and exit code 0", async () => {
    const o = await run("echo hello; echo world >&2");
    assert.ok(o.ok, JSON.stringify(o));
    assert.equal(o.exitCode, 0);
    assert.equal(o.result, "world");
    assert.equal(o.outputs.output, "hello\nworld\n");
    assert.match(o.cost, /^\d+\.\d{4}$/);
  });

  test("a nonzero exit fails as NONZERO_EXIT with the exit code and the output", async () => {
    const o = await run("echo oops; exit 3");
    assert.equal(o.ok, false);
    assert.ok(!o.ok);
    assert.equal(o.kind, "NONZERO_EXIT");
    assert.equal(o.exitCode, 3);
    assert.equal(o.output, "oops\n");
    assert.equal(o.retryable, true);
    assert.match(o.reason, /exited with 3/);
  });

  test("a command over its time limit is killed and fails naming the timeout", async () => {
    const started = Date.now();
    const o = await run("sleep 5", execution(), 300);
    const elapsed = Date.now() - started;
    assert.ok(!o.ok);
    assert.match(o.reason, /timed out after 300 ms/);
    assert.equal(o.exitCode, null);
    assert.ok(elapsed < 2_000, `took ${elapsed} ms`);
  });

  test("a child the command started is killed with it", async () => {
    const started = Date.now();
    // The backgrounded sleep keeps the output pipe open: only killing the whole group ends the run.
    const o = await run("sleep 5 & sleep 5", execution(), 300);
    assert.ok(!o.ok);
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  test("output over 4096 bytes keeps only its tail", async () => {
    const o = await run("seq 1 5000");
    assert.ok(o.ok);
    const output = o.outputs.output!;
    assert.equal(Buffer.byteLength(output), 4096);
    assert.ok(output.endsWith("4999\n5000\n"));
    assert.ok(!output.startsWith("1\n2\n"));
    assert.equal(o.result, "5000");
  });

  test("task inputs arrive as POLITY_INPUT_<NAME>, with the task's ids", async () => {
    const e = execution({ target: "docs", "out-file": "a.txt" }, 2);
    const o = await run(
      'echo "$POLITY_INPUT_TARGET $POLITY_INPUT_OUT_FILE $POLITY_TASK_ID $POLITY_ATTEMPT $POLITY_GOAL_ID"',
      e,
    );
    assert.ok(o.ok);
    assert.equal(o.result, `docs a.txt ${e.taskId} 2 goal-shell`);
  });

  test("a task's command input replaces the worker's command; each attempt gets its own work dir", async () => {
    const e = execution({ command: "pwd" });
    const o = await run("echo not me", e);
    assert.ok(o.ok);
    assert.equal(fs.realpathSync(o.result), fs.realpathSync(path.join(workRoot, e.goalId, `${e.taskId}-1`)));
  });

  test("an abort kills the command at once", async () => {
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 100);
    const o = await run("sleep 5", execution(), undefined, abort.signal);
    assert.ok(!o.ok);
    assert.match(o.reason, /killed by SIGKILL/);
    assert.ok(Date.now() - started < 2_000);
  });

  test("a work dir that cannot be made fails the attempt instead of throwing", async () => {
    const file = path.join(workRoot, "a-file");
    fs.writeFileSync(file, "");
    const o: Outcome = await shellExecutor({ command: "true", cwd: path.join(file, "sub") }, workRoot).run(
      execution(),
      new AbortController().signal,
    );
    assert.ok(!o.ok);
    assert.equal(o.kind, "EXECUTION_ERROR");
    assert.match(o.reason, /cannot create the work dir/);
  });
});

type Of<T extends keyof MessageMap> = MessageMap[T];

describe("shell and external workers in a running hierarchy", () => {
  const prefix = `t-exec-${randomUUID().slice(0, 8)}.`;
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-test-executors", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), "polity-exec-"));
  const who = { tenantId: "t-exec", userId: "tester" };
  const mayor = "aamas-mayor-ops-1";
  const configuredExternal = "aamas-worker-ops-docs-1";
  const topology: TopologyConfig = {
    simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
    topologies: {
      aamas: {
        domains: {
          ops: {
            mayors: 1,
            workers: {
              script: {
                count: 1,
                capacity: 2,
                executor: "shell",
                shell: { command: "echo built $POLITY_TASK_ID", timeoutMs: 10_000 },
              },
              // Declared here, so the platform registers it and routes to it; the agent runs outside.
              docs: { count: 1, capacity: 1, executor: "external" },
            },
          },
        },
      },
    },
  };
  let hierarchy: RunningHierarchy | undefined;
  let watch: LogWatcher | undefined;
  let writer: EventWriter | undefined;
  const agents: RunningExternalAgent[] = [];

  const events = <T extends PolityEvent["type"]>(goalId: string, type: T) =>
    watch!.of(goalId).filter((e): e is Extract<PolityEvent, { type: T }> => e.type === type);
  const completedOf = (goalId: string, taskId: string): Of<"TaskCompleted">[] =>
    events(goalId, "TaskCompleted")
      .map((e) => e.value)
      .filter((v) => v.taskId === taskId);

  before(async () => {
    hierarchy = await startHierarchy({ kafka, codec, topology, topicPrefix: prefix, workRoot });
    watch = await LogWatcher.start(kafka, codec, prefix, [
      "polity.goals.events",
      "polity.tasks.events",
      "polity.agents.events",
    ]);
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
  });

  after(async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await watch?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: TOPICS.map((t) => physicalTopic(t.name, prefix)) }).catch(() => undefined);
    await admin.disconnect();
    fs.rmSync(workRoot, { recursive: true, force: true });
  });

  test("a shell task, then an external agent's task that depends on it, complete the goal", async () => {
    const agent = await startExternalAgent({
      kafka,
      codec,
      agentId: configuredExternal,
      superiorId: mayor,
      domain: "ops",
      specialization: "docs",
      topicPrefix: prefix,
    });
    agents.push(agent);
    assert.equal(agent.announced, false, "the topology registered it; the agent must not register it again");

    const { goalId } = await submitGoal(writer!, who, {
      title: "Build, then document",
      tasks: [
        spec("build", { title: "Build it", specialization: "script" }),
        spec("docs", { title: "Write the docs", specialization: "docs", dependsOn: ["build"] }),
      ],
    });
    const final = await watch!.final(goalId, 60_000);
    assert.equal(final.type, "GoalCompleted", JSON.stringify(final.value));

    const [build] = completedOf(goalId, "build");
    assert.equal(build?.agentId, "aamas-worker-ops-script-1");
    assert.equal(build?.exitCode, 0);
    assert.match(build!.outputs.output!, /built build/);

    const docs = completedOf(goalId, "docs");
    assert.equal(docs.length, 1);
    const done = docs[0]!;
    assert.equal(done.agentId, configuredExternal);
    assert.equal(done.result, "SCOD EHT ETIRW");
    assert.equal(done.cost, "0.0100");
    assert.equal(done.exitCode, null);

    // The external agent's envelope ties its reports to the assignment it answered.
    const assigned = events(goalId, "TaskAssigned").find(
      (e) => e.value.taskId === "docs" && e.value.assigneeTier === "WORKER",
    )!;
    assert.equal(assigned.value.assigneeId, configuredExternal);
    for (const type of ["TaskAccepted", "TaskStarted", "TaskCompleted"] as const) {
      const mine = events(goalId, type).filter((e) => e.value.taskId === "docs");
      assert.equal(mine.length, 1, `${type} for docs`);
      const env = mine[0]!.value.envelope;
      assert.equal(env.tenantId, who.tenantId);
      assert.equal(env.correlationId, goalId);
      assert.equal(env.causationId, assigned.value.envelope.eventId);
      assert.deepEqual({ ...env.actor }, { id: configuredExternal, tier: "WORKER" });
      assert.deepEqual({ ...env.aggregate }, { type: "TASK", id: "docs", version: -1 });
    }
    const started = events(goalId, "TaskStarted").find((e) => e.value.taskId === "docs")!;
    assert.equal(started.value.executor, "external");

    // docs waited for build: it was assigned to the agent only after build completed.
    const order = watch!.of(goalId).map((e) => (e.value as { envelope: { eventId: string } }).envelope.eventId);
    const buildDone = events(goalId, "TaskCompleted").find((e) => e.value.taskId === "build")!;
    assert.ok(order.indexOf(buildDone.value.envelope.eventId) < order.indexOf(assigned.value.envelope.eventId));
  });

  test("an agent the topology does not declare registers itself and reports once, even after rereading its log", async () => {
    const agentId = `ext-review-${randomUUID().slice(0, 6)}`;
    const options = {
      kafka,
      codec,
      agentId,
      superiorId: mayor,
      domain: "ops",
      specialization: "review",
      capacity: 2,
      topicPrefix: prefix,
    };
    const first = await startExternalAgent(options);
    agents.push(first);
    assert.equal(first.announced, true);
    const registered = () =>
      watch!.seen
        .map((s) => s.event)
        .filter((e): e is Extract<PolityEvent, { type: "AgentRegistered" }> => e.type === "AgentRegistered")
        .filter((e) => e.value.agentId === agentId);
    const [reg] = await watch!.until("the agent's registration", () =>
      registered().length > 0 ? registered() : false,
    );
    assert.equal(reg!.value.executor, "external");
    assert.equal(reg!.value.superiorId, mayor);
    assert.equal(reg!.value.capacity, 2);
    // The president checks a task's specialization against its directory when the goal arrives.
    for (const deadline = Date.now() + 10_000; !hierarchy!.feed.directory.get(agentId);) {
      assert.ok(Date.now() < deadline, "the platform's directory never learnt of the agent");
      await new Promise((r) => setTimeout(r, 50));
    }

    const review = (n: number) =>
      submitGoal(writer!, who, {
        title: `Review ${n}`,
        tasks: [spec("review", { title: "Review", specialization: "review", inputs: { text: `draft ${n}` } })],
      });
    const { goalId: g1 } = await review(1);
    assert.equal((await watch!.final(g1)).type, "GoalCompleted");
    assert.equal(completedOf(g1, "review")[0]?.agentId, agentId);
    assert.equal(completedOf(g1, "review")[0]?.result, "1 TFARD");

    // As if it had stopped after reporting but before committing its offsets: it reads
    // everything again, finds its own reports, and does nothing twice.
    await first.stop();
    agents.splice(agents.indexOf(first), 1);
    const admin = kafka.admin();
    await admin.connect();
    await admin.resetOffsets({
      groupId: `${prefix}polity-external-${agentId}`,
      topic: physicalTopic("polity.tasks.events", prefix),
      earliest: true,
    });
    await admin.disconnect();
    const second = await startExternalAgent(options);
    agents.push(second);
    assert.equal(second.announced, false);
    await second.caughtUp;

    const { goalId: g2 } = await review(2);
    assert.equal((await watch!.final(g2)).type, "GoalCompleted");
    assert.equal(completedOf(g2, "review")[0]?.result, "2 TFARD");
    await new Promise((r) => setTimeout(r, 1_000));

    for (const goalId of [g1, g2])
      for (const type of ["TaskAccepted", "TaskStarted", "TaskCompleted"] as const)
        assert.equal(events(goalId, type).length, 1, `${type} of ${goalId}`);
    assert.equal(registered().length, 1, "registered once");
  });

  test("an agent's failed work is reported and retried; a result that does not fit the schema fails as INVALID_OUTPUT", async () => {
    const agentId = `ext-flaky-${randomUUID().slice(0, 6)}`;
    const failedOnce = new Set<string>();
    const agent = await startExternalAgent({
      kafka,
      codec,
      agentId,
      superiorId: mayor,
      domain: "ops",
      specialization: "flaky",
      topicPrefix: prefix,
      work: async (task) => {
        if (task.inputs.mode === "invalid") return { result: "?", outputs: {}, cost: "0.123456" };
        if (!failedOnce.has(task.title)) {
          failedOnce.add(task.title);
          throw new Error("the first try fails");
        }
        return { result: "second try", outputs: {}, cost: "0.0200" };
      },
    });
    agents.push(agent);
    for (const deadline = Date.now() + 10_000; !hierarchy!.feed.directory.get(agentId);) {
      assert.ok(Date.now() < deadline, "the platform's directory never learnt of the agent");
      await new Promise((r) => setTimeout(r, 50));
    }

    const { goalId } = await submitGoal(writer!, who, {
      title: "Flaky",
      tasks: [spec("f", { title: `flaky ${randomUUID()}`, specialization: "flaky" })],
    });
    assert.equal((await watch!.final(goalId)).type, "GoalCompleted");
    const [failed] = events(goalId, "TaskFailed").map((e) => e.value);
    assert.equal(failed?.attempt, 1);
    assert.equal(failed?.agentId, agentId);
    assert.equal(failed?.failureKind, "EXECUTION_ERROR");
    assert.equal(failed?.reason, "the first try fails");
    const [done] = completedOf(goalId, "f");
    assert.equal(done?.attempt, 2);
    assert.equal(done?.result, "second try");

    const { goalId: bad } = await submitGoal(writer!, who, {
      title: "Invalid",
      tasks: [spec("i", { specialization: "flaky", inputs: { mode: "invalid" } })],
    });
    const refused = await watch!.until("the invalid result's TaskFailed", () =>
      events(bad, "TaskFailed").find((e) => e.value.attempt === 1),
    );
    assert.equal(refused.value.failureKind, "INVALID_OUTPUT");
    assert.equal(refused.value.retryable, false);
    assert.match(refused.value.reason, /cost/);
    assert.equal(completedOf(bad, "i").length, 0);
  });

  test("an agent refuses an id the platform acts for, and a superior that is not a mayor", async () => {
    const base = { kafka, codec, domain: "ops", specialization: "script", topicPrefix: prefix };
    await assert.rejects(
      startExternalAgent({ ...base, agentId: "aamas-worker-ops-script-1", superiorId: mayor }),
      /registered as a shell worker, so the platform acts for it/,
    );
    await assert.rejects(
      startExternalAgent({ ...base, agentId: "ext-orphan", superiorId: "aamas-governor-ops" }),
      /aamas-governor-ops is not a registered mayor of aamas/,
    );
  });
});
