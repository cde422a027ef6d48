/**
 * Exactly once under a crash, and a tier scaled out: a tier's process is killed with SIGKILL in the
 * middle of a run and started again; every goal still completes and every task has exactly one
 * TaskCompleted in the log. Two worker instances share the work.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { repoRoot, urlsToEnv } from "../../lib/config.js";
import type { Role } from "../../processors/domain/directory.js";
import { ROLES, startHierarchy } from "../../processors/hierarchy.js";
import { submitGoal } from "../../producers/commands.js";
import { eventually } from "../support/eventually.js";
import { urls } from "../support/infra.js";
import { deployment, task, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type { Codec } from "../../schemas/codec.js";

const who = { tenantId: "acme", userId: "bob" };

/** Runs tiers in a child process, as `processors/main.ts --tiers` does in production. */
async function spawnTier(role: Role, prefix: string, topologyFile: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repoRoot, "processors/main.ts"), "--tiers", role],
    {
      cwd: repoRoot,
      env: { ...process.env, ...urlsToEnv(urls), POLITY_TOPIC_PREFIX: prefix, POLITY_TOPOLOGY_FILE: topologyFile },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} process not ready after 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("processors ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${role} process exited with ${code}:\n${output}`)));
  });
  return child;
}

function exactlyOneCompletion(d: TestDeployment, goalIds: string[]): void {
  for (const goalId of goalIds) {
    const events = d.watch.of(goalId);
    for (const t of TEN_TASK_DAG) {
      const n = events.filter((e) => e.type === "TaskCompleted" && e.value.taskId === t.id).length;
      assert.equal(n, 1, `goal ${goalId}: task ${t.id} has ${n} TaskCompleted events`);
    }
  }
}

describe("recovery and scale-out", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  for (const crashed of ["worker", "president"] as Role[]) {
    it(`completes every goal exactly once when the ${crashed} process is killed mid-run`, async () => {
      const topology = testTopology(300);
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "polity-")), "topology.json");
      fs.writeFileSync(file, JSON.stringify(topology));
      const others = ROLES.filter((r) => r !== crashed);
      const d = await deployment(topology, `crash-${crashed}`, others);
      cleanup.push(() => d.stop());
      let child = await spawnTier(crashed, d.prefix, file);
      cleanup.push(async () => child.kill("SIGKILL"));

      const goalIds: string[] = [];
      for (let i = 0; i < 6; i++)
        goalIds.push((await submitGoal(d.writer, who, { title: `crash ${i}`, tasks: TEN_TASK_DAG })).goalId);
      const count = (type: string) =>
        goalIds.reduce((n, g) => n + d.watch.of(g).filter((e) => e.type === type).length, 0);
      // Mid-run: some tasks done, and (for the worker) some attempts running at the moment of the kill.
      await d.watch.until(
        "a run in full swing",
        () => count("TaskCompleted") >= 5 && (crashed !== "worker" || count("TaskStarted") > count("TaskCompleted")),
        120_000,
      );

      const inFlight = count("TaskStarted") - count("TaskCompleted");
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      child = await spawnTier(crashed, d.prefix, file);

      for (const goalId of goalIds) {
        const end = await d.watch.final(goalId, 180_000);
        assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
      }
      exactlyOneCompletion(d, goalIds);
      if (crashed === "worker") assert.ok(inFlight > 0, `attempts were running when the worker died (${inFlight})`);
      child.kill("SIGTERM");
    });
  }

  it("shares the work between two worker instances", async () => {
    const topology = testTopology(20);
    const d = await deployment(topology, "two-workers", ["president", "governor", "mayor"]);
    cleanup.push(() => d.stop());
    const first = await d.start(["worker"]);
    const second = await d.start(["worker"]);
    const goalIds: string[] = [];
    for (let i = 0; i < 12; i++)
      goalIds.push((await submitGoal(d.writer, who, { title: `shared ${i}`, tasks: TEN_TASK_DAG })).goalId);
    for (const goalId of goalIds) assert.equal((await d.watch.final(goalId, 120_000)).type, "GoalCompleted");
    exactlyOneCompletion(d, goalIds);
    const completedBy = [first, second].map((h) => h.hosts[0]!.written.get("TaskCompleted") ?? 0);
    assert.ok(
      completedBy.every((n) => n > 0),
      `both instances completed tasks: ${completedBy.join(" and ")}`,
    );
    assert.equal(completedBy[0]! + completedBy[1]!, 120);
  });

  it("a partition taken over while another producer's transaction is open restores what was committed after it", async () => {
    // Several tiers write polity.tasks.events. A read-committed reader sees nothing past the first
    // open transaction of a partition (the last stable offset), records committed after it included.
    // A restore that took that offset for the end of the log folded a state without the worker's own
    // committed TaskCompleted, ran the attempt again and completed the task twice.
    const d = await deployment(testTopology(20), "restore-open-tx", ["president", "governor", "mayor"]);
    cleanup.push(() => d.stop());
    const first = await d.start(["worker"]);
    const tasksTopic = physicalTopic("polity.tasks.events", d.prefix);
    const { goalId } = await submitGoal(d.writer, who, {
      title: "taken over",
      tasks: [task("slow", "backend", "api", [], { estimatedEffortMs: 1_500 })],
    });
    const started = await d.watch.until("the attempt's TaskStarted", () =>
      d.watch.seen.find(
        (s) => s.event.type === "TaskStarted" && (s.event.value as { goalId: string }).goalId === goalId,
      ),
    );
    // Another producer opens a transaction on the goal's partition while the attempt runs.
    const other = d.kafka.producer({
      transactionalId: `${d.prefix}other-writer`,
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await other.connect();
    cleanup.push(() => other.disconnect());
    const open = await other.transaction();
    await open.send({ topic: tasksTopic, messages: [{ partition: started.partition, value: "never committed" }] });
    // Every TaskCompleted of the goal as written, committed or not (the open transaction holds the
    // read-committed readers back).
    const completions: bigint[] = [];
    const raw = d.kafka.consumer({ groupId: `${d.prefix}raw-${randomUUID()}`, readUncommitted: true });
    await raw.connect();
    cleanup.push(() => raw.disconnect());
    await raw.subscribe({ topic: tasksTopic, fromBeginning: true });
    await raw.run({
      eachMessage: async ({ message }) => {
        const decoded = await d.codec.decode(message.value).catch(() => null);
        if (decoded?.type === "TaskCompleted" && (decoded.value as { goalId: string }).goalId === goalId)
          completions.push(BigInt(message.offset));
      },
    });
    await eventually(
      "the worker's TaskCompleted, written after the open transaction",
      async () => completions.length,
      (n) => n === 1,
    );
    // The worker's partition moves to a second instance while the transaction is still open.
    await d.start(["worker"]);
    await first.stop();
    // A restore that read only to the last stable offset runs the attempt again within its 0.75-2.25 s.
    await new Promise((r) => setTimeout(r, 5_000));
    assert.deepEqual(completions.length, 1, `TaskCompleted at offsets ${completions.join(", ")}`);
    await open.abort();
    assert.equal((await d.watch.final(goalId, 60_000)).type, "GoalCompleted");
    assert.deepEqual(
      d.watch.of(goalId).filter((e) => e.type === "TaskCompleted").length,
      1,
      "one TaskCompleted in the committed log",
    );
  });

  it("a tier whose consumer kafkajs gives up on starts another and decides what it held", async () => {
    // kafkajs does not restart a consumer after an error it calls not retriable (in CI: "Failed to
    // find group coordinator" after a broker restart); the tier then read nothing more and its
    // process, with no consumer left, ended with exit code 0. Here the worker's codec throws such an
    // error once, for the goal's first assignment, from inside the consumer's batch.
    const d = await deployment(testTopology(20), "consumer-gives-up", ["president", "governor", "mayor"]);
    cleanup.push(() => d.stop());
    let thrown = 0;
    const codec = new Proxy(d.codec, {
      get(target, prop, receiver) {
        if (prop !== "decode") return Reflect.get(target, prop, receiver) as unknown;
        return async (buffer: Buffer) => {
          const decoded = await target.decode(buffer);
          if (decoded.type === "TaskAssigned" && thrown++ === 0)
            throw Object.assign(new Error("injected: a failure kafkajs will not retry"), { retriable: false });
          return decoded;
        };
      },
    }) as Codec;
    const lines: string[] = [];
    const worker = await startHierarchy({
      kafka: d.kafka,
      codec,
      topology: testTopology(20),
      topicPrefix: d.prefix,
      heartbeats: false,
      roles: ["worker"],
      log: (line) => lines.push(line),
    });
    cleanup.push(() => worker.stop());
    const { goalId } = await submitGoal(d.writer, who, { title: "given up on", tasks: TEN_TASK_DAG });
    assert.equal((await d.watch.final(goalId, 90_000)).type, "GoalCompleted");
    assert.ok(thrown > 0, "the injected failure was thrown");
    assert.ok(
      lines.some((l) => l.includes("kafkajs will not restart it; starting a new one")),
      `the worker said it replaced its consumer:\n${lines.join("\n")}`,
    );
    exactlyOneCompletion(d, [goalId]);
  });
});
