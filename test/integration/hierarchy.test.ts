/**
 * The hierarchy on the real stack: goals and projects flow down through every tier and back up,
 * in both topologies, exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { requestPhaseTransition, submitGoal } from "../../producers/commands.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { Topology } from "../../schemas/generated/types.js";
import { ROLES, TIER_TOPICS } from "../../processors/hierarchy.js";
import { deployment, task, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";

const who = { tenantId: "acme", userId: "alice" };

/** Index in the goal's event sequence (one partition, so log order) of the first event matching. */
function indexOf(events: PolityEvent[], type: string, taskId: string): number {
  return events.findIndex((e) => e.type === type && (e.value as { taskId?: string }).taskId === taskId);
}

describe("agent hierarchy on Kafka", () => {
  let d: TestDeployment;
  before(async () => {
    d = await deployment(testTopology(), "hierarchy");
  });
  after(async () => {
    await d?.stop();
  });

  for (const topology of ["aamas", "dgm"] as Topology[]) {
    it(`runs a 10-task DAG across three domains to completion (${topology})`, async () => {
      const { goalId } = await submitGoal(d.writer, who, {
        title: `DAG on ${topology}`,
        topology,
        tasks: TEN_TASK_DAG,
      });
      const end = await d.watch.final(goalId, 90_000);
      assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
      if (end.type !== "GoalCompleted") return;

      const tasksLog = d.watch.seen.filter((s) => s.topic.endsWith("polity.tasks.events")).map((s) => s.event);
      const events = tasksLog.filter((e) => (e.value as { goalId?: string }).goalId === goalId);
      for (const t of TEN_TASK_DAG) {
        const completions = events.filter((e) => e.type === "TaskCompleted" && e.value.taskId === t.id);
        assert.equal(completions.length, 1, `${t.id} has exactly one TaskCompleted`);
        const started = indexOf(events, "TaskStarted", t.id);
        assert.ok(started >= 0, `${t.id} started`);
        for (const dep of t.dependsOn) {
          assert.ok(indexOf(events, "TaskCompleted", dep) < started, `${t.id} started only after ${dep} completed`);
        }
      }
      // Every tier took part: the top, the domain tier, (aamas) mayors, workers.
      const assignees = new Set(
        events
          .filter((e) => e.type === "TaskAssigned")
          .map((e) => (e.type === "TaskAssigned" ? e.value.assigneeTier : "")),
      );
      assert.deepEqual(
        [...assignees].sort(),
        topology === "aamas" ? ["GOVERNOR", "MAYOR", "WORKER"] : ["SUB_MASTER", "WORKER"],
      );

      assert.equal(end.value.tasksCompleted, 10);
      for (const t of TEN_TASK_DAG)
        assert.match(end.value.outputs[t.id] ?? "", /done by/, `result of ${t.id} aggregated`);
      assert.ok(Number(end.value.totalCost) > 0.1, `total cost sums ten attempts: ${end.value.totalCost}`);
    });
  }

  it("walks a project through all eight phases", async () => {
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Eight phases",
      kind: "PROJECT",
      domainHints: ["frontend", "backend"],
    });
    const end = await d.watch.final(goalId, 120_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const phases = d.watch.of(goalId).flatMap((e) => (e.type === "PhaseTransitioned" ? [e.value.toPhase] : []));
    assert.deepEqual(phases, [
      "INITIATION",
      "FEASIBILITY",
      "REQUIREMENTS",
      "DESIGN",
      "DEVELOPMENT",
      "QA",
      "DEPLOYMENT",
      "LAUNCH",
    ]);
    // Every task of a phase completed before the next phase began.
    const events = d.watch.of(goalId);
    const created = events.filter((e) => e.type === "TaskCreated");
    assert.equal(created.length, 8 * 4, "two domains x two specializations x eight phases");
  });

  it("rejects a phase transition while the phase has pending tasks, and says why", async () => {
    const tasks = [
      task("charter", "backend", "api", [], { phase: "INITIATION", estimatedEffortMs: 2_000 }),
      task("study", "backend", "api", [], { phase: "FEASIBILITY" }),
    ];
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Gated project",
      kind: "PROJECT",
      constraints: { phaseGate: "manual" },
      tasks,
    });
    await d.watch.until("INITIATION", () => d.watch.of(goalId).find((e) => e.type === "PhaseTransitioned"));
    const early = await requestPhaseTransition(d.writer, who, goalId, "INITIATION", "FEASIBILITY");
    const skip = await requestPhaseTransition(d.writer, who, goalId, "INITIATION", "DESIGN");
    const answer = (requestId: string) =>
      d.watch.until(`answer to ${requestId}`, () =>
        d.watch
          .of(goalId)
          .find(
            (e) =>
              (e.type === "PhaseTransitionRejected" && e.value.requestId === requestId) ||
              (e.type === "PhaseTransitioned" && e.value.requestId === requestId),
          ),
      );
    const rejected = await answer(early.envelope.eventId);
    assert.equal(rejected.type, "PhaseTransitionRejected");
    if (rejected.type !== "PhaseTransitionRejected") return;
    assert.deepEqual(rejected.value.pendingTaskIds, ["charter"]);
    assert.match(rejected.value.reasons.join(" "), /1 task\(s\) of INITIATION are not done: charter/);
    const skipped = await answer(skip.envelope.eventId);
    assert.equal(skipped.type, "PhaseTransitionRejected");
    if (skipped.type === "PhaseTransitionRejected")
      assert.match(skipped.value.reasons.join(" "), /after INITIATION comes FEASIBILITY/);

    await d.watch.until("charter done", () => d.watch.of(goalId).find((e) => e.type === "TaskCompleted"));
    const onTime = await requestPhaseTransition(d.writer, who, goalId, "INITIATION", "FEASIBILITY", "charter signed");
    const passed = await answer(onTime.envelope.eventId);
    assert.equal(passed.type, "PhaseTransitioned");
    if (passed.type === "PhaseTransitioned") assert.equal(passed.value.toPhase, "FEASIBILITY");
  });

  it("rejects an invalid task graph with the reason", async () => {
    const cycle = await submitGoal(d.writer, who, {
      title: "Cycle",
      tasks: [
        task("a", "backend", "api", ["c"]),
        task("b", "backend", "api", ["a"]),
        task("c", "backend", "api", ["b"]),
      ],
    });
    const unknown = await submitGoal(d.writer, who, {
      title: "Dangling",
      tasks: [task("a", "backend", "api", ["ghost"])],
    });
    for (const [goalId, reason] of [
      [cycle.goalId, /the tasks form a cycle: (a|b|c) -> (a|b|c) -> (a|b|c) -> (a|b|c)/],
      [unknown.goalId, /task "a" depends on unknown task "ghost"/],
    ] as const) {
      const end = await d.watch.final(goalId);
      assert.equal(end.type, "GoalRejected");
      if (end.type !== "GoalRejected") continue;
      assert.equal(end.value.code, "INVALID_TASK_GRAPH");
      assert.match(end.value.reasons.join("; "), reason);
      assert.equal(d.watch.of(goalId).filter((e) => e.type === "TaskCreated").length, 0, "nothing half-written");
    }
  });
});

describe("bad input on the tiers' topics", () => {
  let d: TestDeployment;
  before(async () => {
    d = await deployment(testTopology(), "deadletters");
  });
  after(async () => {
    await d?.stop();
  });

  it("dead-letters an unreadable message with the reason and keeps going", async () => {
    const producer = d.kafka.producer();
    await producer.connect();
    const garbage = Buffer.from("not avro at all");
    // The deployment's topics are new: a partition's leader may still move (NOT_LEADER_FOR_PARTITION
    // was seen once in CI), which a bare producer does not always ride out. Retry what is retriable.
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.send({
          topic: `${d.prefix}polity.tasks.events`,
          messages: [{ key: "goal-x", value: garbage, headers: { "polity-type": "TaskCompleted" } }],
        });
        break;
      } catch (e) {
        if (!(e as { retriable?: boolean }).retriable || attempt >= 10) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await producer.disconnect();
    const { goalId } = await submitGoal(d.writer, who, { title: "after the garbage", tasks: TEN_TASK_DAG.slice(0, 2) });
    assert.equal((await d.watch.final(goalId)).type, "GoalCompleted");

    const { LogWatcher } = await import("../support/watch.js");
    const letters = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.deadletters"]);
    try {
      // The test's own watcher dead-letters the garbage too (its group is not a tier's).
      const fromTiers = () =>
        letters.seen.filter(
          (s) => s.event.type === "DeadLetter" && s.event.value.consumerGroup.startsWith(`${d.prefix}polity-`),
        );
      // Every role that reads polity.tasks.events (the four tiers, and the resource manager).
      const readers = ROLES.filter((r) => TIER_TOPICS[r].inputs.includes("polity.tasks.events")).sort();
      assert.ok(readers.length >= 4, `roles reading the tasks topic: ${readers.join(", ")}`);
      const seen = await letters.until("a dead letter from each role reading the topic", () =>
        fromTiers().length >= readers.length ? fromTiers() : undefined,
      );
      // A moment more, so that a second letter from one group would show up below.
      await new Promise((r) => setTimeout(r, 1_000));
      const groups = fromTiers()
        .map((s) => (s.event.type === "DeadLetter" ? s.event.value.consumerGroup : ""))
        .sort();
      assert.deepEqual(
        groups,
        readers.map((r) => `${d.prefix}polity-${r}`),
      );
      for (const s of seen) {
        assert.equal(s.event.type, "DeadLetter");
        if (s.event.type !== "DeadLetter") continue;
        assert.equal(s.event.value.errorKind, "UNDECODABLE");
        assert.deepEqual(s.event.value.originalValue, garbage, "the original bytes are kept");
        assert.match(s.event.value.reason, /magic byte|wire format/i);
      }
    } finally {
      await letters.stop();
    }
  });
});
