/**
 * Time limits on the real stack (processors/domain/time-limits.ts): a shell worker group whose
 * command hangs past the group's timeoutMs is timed out by its mayor (TaskTimedOut), retried on the
 * other worker, then escalated (TIMEOUT) until the goal fails; a goal whose task hangs is flagged
 * DEADLINE_AT_RISK before its deadline and failed when the deadline passes. In both, the worker
 * hosts kill the shell commands of the attempts that are over.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { TopologyConfig } from "../../processors/topology.js";
import { submitGoal } from "../../producers/commands.js";
import type { MessageMap, MessageTypeName } from "../../schemas/generated/types.js";
import { deployment, task, type TestDeployment } from "../support/hierarchy.js";

const who = { tenantId: "acme", userId: "alice" };
/** Commands no other test runs, so a leftover process of this test can be told apart. */
const HANG_TIMED = "sleep 41.7";
const HANG_FOREVER = "sleep 43.1";
const TIMEOUT_MS = 1_200;

const topology: TopologyConfig = {
  simulated: { seed: 3, meanDurationMs: 10, failureRate: 0 },
  topologies: {
    aamas: {
      // Two attempts per delivery, one delivery: attempt 1, a retry elsewhere, then the escalation.
      retries: { worker: 2, domain: 1 },
      domains: {
        ops: {
          mayors: 1,
          workers: {
            slow: { count: 2, capacity: 1, executor: "shell", shell: { command: HANG_TIMED }, timeoutMs: TIMEOUT_MS },
            stuck: { count: 1, capacity: 1, executor: "shell", shell: { command: HANG_FOREVER } },
          },
        },
      },
    },
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = (command: string) =>
  execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.trim() === command).length;

describe("time limits on Kafka", () => {
  let d: TestDeployment;
  before(async () => {
    d = await deployment(topology, "time-limits");
  });
  after(async () => {
    await d?.stop();
  });

  it("a hung shell attempt is timed out, retried on the other worker, then escalated as TIMEOUT; a hung goal misses its deadline", async () => {
    const timed = await submitGoal(d.writer, who, {
      title: "hangs past its limit",
      tasks: [task("hang", "ops", "slow")],
    });
    const deadline = new Date(Date.now() + 5_000);
    const late = await submitGoal(d.writer, who, {
      title: "hangs past its deadline",
      deadline,
      tasks: [task("forever", "ops", "stuck")],
    });

    // ---- the task timeout ----
    const failed = await d.watch.final(timed.goalId, 30_000);
    const events = d.watch.of(timed.goalId);
    const of = <T extends MessageTypeName>(type: T): MessageMap[T][] =>
      events.filter((e) => e.type === type).map((e) => e.value as unknown as MessageMap[T]);
    const toWorkers = of("TaskAssigned").filter((a) => a.assigneeTier === "WORKER");
    assert.deepEqual(
      toWorkers.map((a) => [a.attempt, a.timeoutMs]),
      [
        [1, TIMEOUT_MS],
        [2, TIMEOUT_MS],
      ],
      "each attempt is handed to a worker with the group's limit",
    );
    assert.notEqual(toWorkers[0]!.assigneeId, toWorkers[1]!.assigneeId, "the retry goes to the other worker");
    const timeouts = of("TaskTimedOut");
    assert.deepEqual(
      timeouts.map((t) => [t.attempt, t.agentId, t.timeoutMs]),
      toWorkers.map((a) => [a.attempt, a.assigneeId, TIMEOUT_MS]),
      "both attempts timed out, once each",
    );
    for (const t of timeouts) assert.ok(t.elapsedMs > TIMEOUT_MS && t.elapsedMs < TIMEOUT_MS + 3_000, `${t.elapsedMs}`);
    assert.equal(events.find((e) => e.type === "TaskTimedOut")?.value.envelope.actor.tier, "MAYOR");
    assert.deepEqual(
      of("TaskRetried").map((r) => r.attempt),
      [2],
    );
    const escalations = of("EscalationRaised");
    assert.equal(escalations[0]?.kind, "TIMEOUT");
    assert.equal(escalations[0]?.fromTier, "MAYOR");
    assert.match(escalations[0]!.reason, /failed 2 of 2 attempts, the last by timing out/);
    assert.equal(failed.type, "GoalFailed");
    if (failed.type === "GoalFailed") assert.match(failed.value.reason, /timed out after \d+ ms \(limit 1200 ms\)/);
    assert.equal(of("TaskCompleted").length + of("TaskFailed").length, 0, "a timed-out attempt reports nothing");

    // ---- the goal deadline ----
    const ended = await d.watch.final(late.goalId, 30_000);
    // GoalFailed is on the goals topic, what came with it on the tasks topic: wait for both.
    await d.watch.until("the deadline's cancel and resolution", () =>
      d.watch.of(late.goalId).some((e) => e.type === "EscalationResolved"),
    );
    const lateEvents = d.watch.of(late.goalId);
    const risk = lateEvents.find((e) => e.type === "EscalationRaised" && e.value.kind === "DEADLINE_AT_RISK");
    assert.ok(risk && risk.type === "EscalationRaised", "DEADLINE_AT_RISK raised");
    assert.equal(risk.value.toTier, "SYSTEM");
    assert.equal(ended.type, "GoalFailed");
    if (ended.type !== "GoalFailed") return;
    assert.match(
      ended.value.reason,
      new RegExp(`deadline ${deadline.toISOString()} passed with 0 of 1 task\\(s\\) done`),
    );
    assert.equal(ended.value.escalationId, risk.value.escalationId);
    const riskAt = risk.value.envelope.occurredAt.getTime();
    const failedAt = ended.value.envelope.occurredAt.getTime();
    assert.ok(
      riskAt < deadline.getTime() && failedAt >= deadline.getTime(),
      "at risk before the deadline, failed after it",
    );
    assert.ok(failedAt - deadline.getTime() < 3_000, `failed ${failedAt - deadline.getTime()} ms after the deadline`);
    const order = lateEvents.map((e) => e.type);
    assert.ok(order.indexOf("EscalationRaised") < order.indexOf("GoalFailed"));
    assert.ok(
      lateEvents.some(
        (e) => e.type === "TaskCancelled" && e.value.taskId === "forever" && e.value.cause === "GOAL_FAILED",
      ),
    );
    assert.ok(
      lateEvents.some((e) => e.type === "EscalationResolved" && e.value.escalationId === risk.value.escalationId),
      "the at-risk escalation is closed",
    );

    // The worker hosts aborted the attempts that were over: no hung command is left running.
    await sleep(500);
    assert.equal(running(HANG_TIMED), 0, "the timed-out commands were killed");
    assert.equal(running(HANG_FOREVER), 0, "the cancelled command was killed");
  });
});
