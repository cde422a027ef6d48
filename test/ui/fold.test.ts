/**
 * The dashboard's live fold (ui/src/fold.ts): a goal's tasks kept current from its live events with
 * the state projection's rules, so that a late, repeated or older event never moves a task back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyEvent, layers, mergeReadModel, type GoalLive, type TaskView } from "../../ui/src/fold.js";

const at = "2026-01-01T00:00:00.000Z";
const ev = (type: string, taskId: string | null, payload: Record<string, unknown> = {}) => ({
  type,
  taskId,
  occurredAt: at,
  payload,
});
function goal(...ids: string[]): GoalLive {
  const g: GoalLive = { status: "RUNNING", currentPhase: null, tasks: new Map(), version: 0 };
  for (const id of ids)
    applyEvent(g, ev("TaskCreated", id, { task: { id, title: id, domain: "backend", dependsOn: [] } }));
  return g;
}
const status = (g: GoalLive, id: string) => g.tasks.get(id)!.status;

describe("the dashboard's live fold", () => {
  it("moves a task through an attempt and ignores what comes late or twice", () => {
    const g = goal("a");
    assert.equal(status(g, "a"), "PENDING");
    applyEvent(g, ev("TaskAssigned", "a", { attempt: 1, assigneeTier: "GOVERNOR", assigneeId: "gov" }));
    applyEvent(g, ev("TaskAssigned", "a", { attempt: 1, assigneeTier: "WORKER", assigneeId: "w1" }));
    applyEvent(g, ev("TaskStarted", "a", { attempt: 1 }));
    assert.equal(status(g, "a"), "RUNNING");
    assert.equal(g.tasks.get("a")!.worker, "w1");
    // A late TaskAccepted of the same attempt does not move it back.
    assert.equal(applyEvent(g, ev("TaskAccepted", "a", { attempt: 1 })), false);
    assert.equal(status(g, "a"), "RUNNING");
    applyEvent(g, ev("TaskProgressed", "a", { attempt: 1, percent: 40 }));
    assert.equal(g.tasks.get("a")!.progress, 40);
    applyEvent(g, ev("TaskCompleted", "a", { attempt: 1, agentId: "w1", cost: "0.1000" }));
    assert.equal(status(g, "a"), "COMPLETED");
    assert.equal(g.tasks.get("a")!.cost, "0.1000");
    // Nothing moves a completed task.
    assert.equal(applyEvent(g, ev("TaskFailed", "a", { attempt: 1 })), false);
    assert.equal(applyEvent(g, ev("TaskCancelled", "a", {})), false);
    assert.equal(status(g, "a"), "COMPLETED");
  });

  it("follows retries: a failed attempt, then the next one; an older attempt's event is ignored", () => {
    const g = goal("a");
    applyEvent(g, ev("TaskAssigned", "a", { attempt: 1, assigneeTier: "WORKER", assigneeId: "w1" }));
    applyEvent(g, ev("TaskFailed", "a", { attempt: 1 }));
    assert.equal(status(g, "a"), "FAILED");
    applyEvent(g, ev("TaskRetried", "a", { attempt: 2 }));
    assert.equal(status(g, "a"), "READY");
    assert.equal(g.tasks.get("a")!.worker, null);
    applyEvent(g, ev("TaskAssigned", "a", { attempt: 2, assigneeTier: "WORKER", assigneeId: "w2" }));
    assert.equal(applyEvent(g, ev("TaskStarted", "a", { attempt: 1 })), false);
    assert.equal(status(g, "a"), "ASSIGNED");
    assert.equal(g.tasks.get("a")!.attempt, 2);
  });

  it("keeps a timed-out attempt timed out, and takes its late success as the tiers do", () => {
    const g = goal("t");
    applyEvent(g, ev("TaskAssigned", "t", { attempt: 1, assigneeTier: "WORKER", assigneeId: "w1" }));
    applyEvent(g, ev("TaskStarted", "t", { attempt: 1 }));
    applyEvent(g, ev("TaskTimedOut", "t", { attempt: 1, agentId: "w1", timeoutMs: 1000, elapsedMs: 1500 }));
    assert.equal(applyEvent(g, ev("TaskStarted", "t", { attempt: 1 })), false, "late progress changes nothing");
    assert.equal(status(g, "t"), "TIMED_OUT");
    applyEvent(g, ev("TaskRetried", "t", { attempt: 2 }));
    // The work of attempt 1 was done after all: its success completes the task (kernel/status.ts).
    assert.equal(applyEvent(g, ev("TaskCompleted", "t", { attempt: 1, agentId: "w1" })), true);
    assert.equal(status(g, "t"), "COMPLETED");
    assert.equal(applyEvent(g, ev("TaskCompleted", "t", { attempt: 2, agentId: "w2" })), false, "once");
  });

  it("ends the goal once, and cancels the open tasks of a stopped goal", () => {
    const g = goal("a", "b");
    applyEvent(g, ev("TaskCompleted", "a", { attempt: 1 }));
    applyEvent(g, ev("TaskCancelled", "b", {}));
    applyEvent(g, ev("GoalStopped", null));
    assert.equal(g.status, "STOPPED");
    assert.equal(applyEvent(g, ev("GoalCompleted", null)), false);
    assert.deepEqual([status(g, "a"), status(g, "b")], ["COMPLETED", "CANCELLED"]);
  });

  it("takes from the read model only what moves forward", () => {
    const g = goal("a", "b");
    applyEvent(g, ev("TaskCompleted", "a", { attempt: 1 }));
    const row = (taskId: string, s: TaskView["status"]): Omit<TaskView, "changedAt"> => ({
      taskId,
      title: taskId,
      domain: "backend",
      specialization: null,
      phase: null,
      status: s,
      attempt: 1,
      dependsOn: [],
      worker: null,
      progress: 0,
      cost: null,
    });
    // The read model is behind on a (RUNNING) and ahead on b (COMPLETED), and knows a new task c.
    mergeReadModel(g, "RUNNING", null, [row("a", "RUNNING"), row("b", "COMPLETED"), row("c", "PENDING")]);
    assert.deepEqual(
      [...g.tasks.values()].map((t) => [t.taskId, t.status]),
      [
        ["a", "COMPLETED"],
        ["b", "COMPLETED"],
        ["c", "PENDING"],
      ],
    );
  });

  it("lays a DAG out in layers by longest path", () => {
    const depth = layers([
      { taskId: "a", dependsOn: [] },
      { taskId: "b", dependsOn: ["a"] },
      { taskId: "c", dependsOn: ["a", "b"] },
      { taskId: "d", dependsOn: ["unknown"] },
    ]);
    assert.deepEqual(Object.fromEntries(depth), { a: 0, b: 1, c: 2, d: 0 });
  });
});
