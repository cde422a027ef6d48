/**
 * Health on the real stack: workers heartbeat, the health monitor declares a hung worker failed,
 * its superior moves its running tasks to another worker, and the goal still completes with every
 * task completed exactly once. The health processor itself survives a SIGKILL without losing or
 * doubling a failure.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { repoRoot, urlsToEnv } from "../../lib/config.js";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import { ROLES } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { submitGoal } from "../../producers/commands.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { urls } from "../support/infra.js";
import { deployment, task, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const who = { tenantId: "acme", userId: "bob" };
const HEARTBEAT_MS = 300;

/** Four long react tasks: both react workers of aamas frontend (capacity 2) are full. */
const LONG_TASKS = ["r1", "r2", "r3", "r4"].map((id) =>
  task(id, "frontend", "react", [], { estimatedEffortMs: 3_000 }),
);

function healthTopology(): TopologyConfig {
  return { ...testTopology(3_000), heartbeatIntervalMs: HEARTBEAT_MS };
}

const agentEvents = (w: LogWatcher, type: string, agentId?: string): PolityEvent[] =>
  w.seen
    .map((s) => s.event)
    .filter((e) => e.type === type && (agentId === undefined || (e.value as { agentId: string }).agentId === agentId));

/** The worker holding the most running attempts of the goal, once it holds two. */
async function busyWorker(d: TestDeployment, goalId: string): Promise<string> {
  return d.watch.until(
    "a worker running two tasks",
    () => {
      const running = new Map<string, number>();
      for (const e of d.watch.of(goalId))
        if (e.type === "TaskStarted") running.set(e.value.agentId, (running.get(e.value.agentId) ?? 0) + 1);
      return [...running].find(([, n]) => n >= 2)?.[0];
    },
    60_000,
  );
}

function exactlyOneCompletion(d: TestDeployment, goalId: string): PolityEvent[] {
  const events = d.watch.of(goalId);
  const completions: PolityEvent[] = [];
  for (const t of LONG_TASKS) {
    const done = events.filter((e) => e.type === "TaskCompleted" && e.value.taskId === t.id);
    assert.equal(done.length, 1, `task ${t.id} has ${done.length} TaskCompleted events`);
    completions.push(done[0]!);
  }
  return completions;
}

async function spawnHealth(prefix: string, topologyFile: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repoRoot, "processors/main.ts"), "--tiers", "health"],
    {
      cwd: repoRoot,
      env: { ...process.env, ...urlsToEnv(urls), POLITY_TOPIC_PREFIX: prefix, POLITY_TOPOLOGY_FILE: topologyFile },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`health process not ready after 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("processors ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`health process exited with ${code}:\n${output}`)));
  });
  return child;
}

describe("health: heartbeats, failure detection and reassignment", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it("moves a hung worker's tasks to another worker; each task completes exactly once", async () => {
    const d = await deployment(healthTopology(), "health", [], { heartbeats: true });
    cleanup.push(() => d.stop());
    const running: RunningHierarchy = await d.start();
    const agents = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events"]);
    cleanup.push(() => agents.stop());

    // Every worker heartbeats, with rising sequence numbers.
    await agents.until(
      "heartbeats of the workers",
      () => agentEvents(agents, "AgentHeartbeat", "aamas-worker-frontend-react-1").length >= 2,
      30_000,
    );
    const beats = agentEvents(agents, "AgentHeartbeat", "aamas-worker-frontend-react-1").map(
      (e) => (e.value as { sequence: number }).sequence,
    );
    assert.ok(beats[1]! > beats[0]!, `sequences rise: ${beats.join(", ")}`);

    const { goalId } = await submitGoal(d.writer, who, { title: "long tasks", tasks: LONG_TASKS });
    const hung = await busyWorker(d, goalId);
    // Let a heartbeat report the tasks it holds, then make it hang.
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    running.silence(hung);

    const failure = await agents.until(
      `AgentFailed for ${hung}`,
      () => agentEvents(agents, "AgentFailed", hung)[0],
      30_000,
    );
    const held = (failure.value as { inFlightTasks: string[] }).inFlightTasks;
    assert.ok(held.length >= 1, `the failure names the tasks it held: ${JSON.stringify(failure.value)}`);

    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const completions = exactlyOneCompletion(d, goalId);
    const events = d.watch.of(goalId);
    const moved = events.filter((e) => e.type === "TaskReassigned" && e.value.fromAgentId === hung);
    assert.ok(moved.length >= 2, `the hung worker's two tasks were reassigned (${moved.length})`);
    for (const e of moved) assert.equal(e.type === "TaskReassigned" && e.value.cause, "AGENT_FAILED");
    for (const c of completions)
      assert.notEqual(c.type === "TaskCompleted" && c.value.agentId, hung, "no task completed on the hung worker");
    // Nothing was assigned to the hung worker after it was declared failed.
    const failedAt = (failure.value as { envelope: { occurredAt: Date } }).envelope.occurredAt.getTime();
    const lateAssignments = events.filter(
      (e) =>
        e.type === "TaskAssigned" &&
        e.value.assigneeId === hung &&
        e.value.envelope.occurredAt.getTime() > failedAt + 1_000,
    );
    assert.deepEqual(lateAssignments, []);
    assert.equal(agentEvents(agents, "AgentFailed", hung).length, 1, "declared failed once");

    // It resumes: heartbeats come back and the monitor says so, once.
    running.unsilence(hung);
    await agents.until("AgentRecovered", () => agentEvents(agents, "AgentRecovered", hung)[0], 30_000);
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    assert.equal(agentEvents(agents, "AgentRecovered", hung).length, 1);
    assert.equal(agentEvents(agents, "AgentFailed", hung).length, 1);
  });

  it("a SIGKILLed health processor loses and doubles no failure", async () => {
    const topology = healthTopology();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "polity-")), "topology.json");
    fs.writeFileSync(file, JSON.stringify(topology));
    const d = await deployment(topology, "health-crash", [], { heartbeats: true });
    cleanup.push(() => d.stop());
    const running = await d.start(ROLES.filter((r) => r !== "health"));
    let child = await spawnHealth(d.prefix, file);
    cleanup.push(async () => child.kill("SIGKILL"));
    const agents = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events"]);
    cleanup.push(() => agents.stop());
    const ticksSince = (from: number) =>
      agents.seen
        .slice(from)
        .filter((s) => s.event.type === "AgentHeartbeat" && (s.event.value as { tier: string }).tier === "SYSTEM")
        .length;
    const kill = async () => {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    };

    await agents.until("the monitor ticking", () => ticksSince(0) >= 6, 30_000);
    const hung = "dgm-worker-backend-api-1";
    running.silence(hung);
    // Killed before the timeout ends: the failure is decided by the restarted monitor, not lost.
    await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    await kill();
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    child = await spawnHealth(d.prefix, file);
    await agents.until("AgentFailed after the restart", () => agentEvents(agents, "AgentFailed", hung)[0], 30_000);

    // Killed again after the failure was written: the restarted monitor does not declare it again.
    await kill();
    child = await spawnHealth(d.prefix, file);
    const from = agents.seen.length;
    await agents.until("ticks after the second restart", () => ticksSince(from) >= 12, 30_000);
    assert.equal(agentEvents(agents, "AgentFailed", hung).length, 1, "declared failed exactly once");
    assert.deepEqual(
      agentEvents(agents, "AgentFailed").map((e) => (e.value as { agentId: string }).agentId),
      [hung],
      "no live agent declared failed across the restarts",
    );

    // And recovers exactly once.
    running.unsilence(hung);
    await agents.until("AgentRecovered", () => agentEvents(agents, "AgentRecovered", hung)[0], 30_000);
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    assert.equal(agentEvents(agents, "AgentRecovered", hung).length, 1);
    child.kill("SIGTERM");
  });
});
