/**
 * Governance and resilience on the real stack: an emergency stop halts a goal mid-run (workers
 * abort what they run, nothing completes after its cancel), and a task that always fails climbs the
 * hierarchy under the configured retry limits until the top fails the goal with the reason chain.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { stopGoal, submitGoal } from "../../producers/commands.js";
import type { Topology } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, testTopology, type TestDeployment } from "../support/hierarchy.js";

const who = { tenantId: "acme", userId: "alice" };
const operator = { tenantId: "acme", userId: "ops-oncall" };

/** Simulated tasks take 1-3 s (mean 2 s) unless they say otherwise. */
const MEAN_MS = 2_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const taskIdOf = (e: PolityEvent) => (e.value as { taskId?: string }).taskId;

describe("emergency stop on Kafka", () => {
  let d: TestDeployment;
  before(async () => {
    d = await deployment(testTopology(MEAN_MS), "stop");
  });
  after(async () => {
    await d?.stop();
  });

  for (const topology of ["aamas", "dgm"] as Topology[]) {
    it(`stops a goal mid-run: every open task is cancelled once and nothing completes after its cancel (${topology})`, async () => {
      const tasks = [
        task("quick", "backend", "api", [], { estimatedEffortMs: 40 }),
        task("long-ui", "frontend", "react", ["quick"]),
        task("long-db", "backend", "database", ["quick"]),
        task("later", "testing", "unit-test", ["long-ui"]),
      ];
      const { goalId } = await submitGoal(d.writer, who, { title: `stop me (${topology})`, topology, tasks });
      const started = (id: string) => d.watch.of(goalId).some((e) => e.type === "TaskStarted" && taskIdOf(e) === id);
      await d.watch.until("both long tasks running", () => started("long-ui") && started("long-db"), 60_000);

      await stopGoal(d.writer, operator, goalId, "operator pulled the plug");
      const stopped = await d.watch.until("GoalStopped", () =>
        d.watch.of(goalId).find((e) => e.type === "GoalStopped"),
      );
      assert.equal(stopped.type, "GoalStopped");
      if (stopped.type !== "GoalStopped") return;
      assert.equal(stopped.value.reason, "operator pulled the plug");
      assert.equal(stopped.value.requestedBy, "ops-oncall");
      assert.deepEqual([...stopped.value.cancelledTaskIds].sort(), ["later", "long-db", "long-ui"]);
      // Long enough for every cancelled attempt to have finished, had it not been aborted.
      await sleep(2 * 1.5 * MEAN_MS);

      const events = d.watch.of(goalId);
      const final = events.filter((e) => ["GoalCompleted", "GoalFailed", "GoalStopped"].includes(e.type));
      assert.deepEqual(
        final.map((e) => e.type),
        ["GoalStopped"],
        "the goal ends once, stopped",
      );
      const completedIds = new Set(events.filter((e) => e.type === "TaskCompleted").map(taskIdOf));
      assert.deepEqual([...completedIds], ["quick"], "only the task done before the stop completed");
      for (const t of tasks) {
        const cancels = events.flatMap((e, i) => (e.type === "TaskCancelled" && e.value.taskId === t.id ? [i] : []));
        if (completedIds.has(t.id)) {
          assert.equal(cancels.length, 0, `${t.id} completed before the stop: not cancelled`);
          continue;
        }
        assert.equal(cancels.length, 1, `${t.id} is cancelled exactly once`);
        const cancel = events[cancels[0]!]!;
        if (cancel.type === "TaskCancelled") assert.equal(cancel.value.cause, "GOAL_STOPPED");
        const afterCancel = events.slice(cancels[0]! + 1).filter((e) => taskIdOf(e) === t.id);
        assert.deepEqual(
          afterCancel.map((e) => e.type),
          [],
          `nothing happens to ${t.id} after its cancel (no completion, no retry, no new assignment)`,
        );
      }
      assert.ok(!events.some((e) => e.type === "TaskStarted" && taskIdOf(e) === "later"), "later never started");
    });
  }

  it("answers a stop of a goal that already completed with nothing", async () => {
    const { goalId } = await submitGoal(d.writer, who, {
      title: "already done",
      tasks: [task("quick", "backend", "api", [], { estimatedEffortMs: 20 })],
    });
    assert.equal((await d.watch.final(goalId)).type, "GoalCompleted");
    await stopGoal(d.writer, operator, goalId, "too late");
    await sleep(2_000);
    assert.ok(!d.watch.types(goalId).includes("GoalStopped"));
    assert.ok(!d.watch.types(goalId).includes("TaskCancelled"));
  });
});

describe("escalation to the top on Kafka", () => {
  let d: TestDeployment;
  before(async () => {
    // Every simulated attempt fails; 2 attempts per delivery and 2 deliveries keep the run short.
    const topology = testTopology(20);
    topology.simulated.failureRate = 1;
    for (const t of Object.values(topology.topologies)) t!.retries = { worker: 2, domain: 2 };
    d = await deployment(topology, "escalation");
  });
  after(async () => {
    await d?.stop();
  });

  for (const topology of ["aamas", "dgm"] as Topology[]) {
    it(`a worker that always fails is escalated to the top, which fails the goal with the reason chain (${topology})`, async () => {
      const { goalId } = await submitGoal(d.writer, who, {
        title: `doomed (${topology})`,
        topology,
        tasks: [task("flaky", "backend", "api")],
      });
      const end = await d.watch.final(goalId, 60_000);
      assert.equal(end.type, "GoalFailed", JSON.stringify(end.value));
      if (end.type !== "GoalFailed") return;
      const events = d.watch.of(goalId);
      const failures = events.filter((e) => e.type === "TaskFailed");
      assert.equal(failures.length, 4, "2 attempts in each of 2 deliveries");
      const chain = end.value.reason.split(" -> ");
      const failure =
        /^attempt (3|4) on \S+-worker-backend-api-\d failed: simulated failure \(draw 0\.\d+ < failure rate 1\)$/;
      assert.match(chain[0]!, failure);
      assert.match(chain[1]!, failure);
      assert.deepEqual(
        chain.slice(2).map((c) => c.replace(/^Mayor \d/, "Mayor N")),
        topology === "aamas"
          ? [
              "Mayor N of backend escalates: task flaky failed 2 of 2 attempts of delivery 2 (4 attempts in all)",
              "Governor of backend cannot settle it: 2 of 2 deliveries in backend failed",
              "President: no policy allows another attempt: the goal fails and its open tasks are cancelled",
            ]
          : [
              "Sub-master of backend escalates: task flaky failed 2 attempts in each of 2 deliveries (4 attempts)",
              "Master: no policy allows another attempt: the goal fails and its open tasks are cancelled",
            ],
      );
      // Every escalation is closed, the top's with the goal's fate.
      await d.watch.until("every escalation resolved", () => {
        const raised = events.filter((e) => e.type === "EscalationRaised").length;
        const now = d.watch.of(goalId);
        return now.filter((e) => e.type === "EscalationResolved").length >= raised ? now : undefined;
      });
      const now = d.watch.of(goalId);
      const raised = now.flatMap((e) => (e.type === "EscalationRaised" ? [e.value] : []));
      const resolved = now.flatMap((e) => (e.type === "EscalationResolved" ? [e.value] : []));
      assert.deepEqual(resolved.map((r) => r.escalationId).sort(), raised.map((r) => r.escalationId).sort());
      assert.deepEqual(
        resolved.map((r) => r.outcome),
        topology === "aamas" ? ["REASSIGN", "ESCALATED_FURTHER", "FAIL_GOAL"] : ["FAIL_GOAL"],
      );
      assert.deepEqual(
        raised.map((r) => `${r.fromTier}>${r.toTier}`),
        topology === "aamas" ? ["MAYOR>GOVERNOR", "MAYOR>GOVERNOR", "GOVERNOR>PRESIDENT"] : ["SUB_MASTER>MASTER"],
      );
    });
  }
});
