/**
 * Resource allocation and performance SLAs on the real stack: under a RESOURCE_ALLOCATION policy
 * governors ask for each task's budget before dispatching it; a task the goal's budget cannot
 * cover is denied, and the goal fails with the denial's reason. A PERFORMANCE policy with a tiny
 * duration limit raises PerformanceAlerts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import { definePolicy, submitGoal } from "../../producers/commands.js";
import { deployment, task, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const user = { tenantId: "acme", userId: "alice" };
const admin = { tenantId: "acme", userId: "root" };

describe("resource allocation and performance SLAs on Kafka", () => {
  let d: TestDeployment;
  let h: RunningHierarchy;
  let governance: LogWatcher;
  before(async () => {
    d = await deployment(testTopology(), "resources", []);
    h = await d.start();
    governance = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.governance.events"]);
    await definePolicy(d.writer, admin, {
      policyId: "task-budgets",
      name: "Task budgets",
      category: "RESOURCE_ALLOCATION",
      description: "Every task is paid for out of its goal's budget",
      rules: JSON.stringify({ taskBudget: "1.0000", maxTaskBudget: "10.0000" }),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
    });
    // Frontend work costs more: its tasks ask 6.0000 (the policy of higher precedence sets the amount).
    await definePolicy(d.writer, admin, {
      policyId: "frontend-budgets",
      name: "Frontend budgets",
      category: "RESOURCE_ALLOCATION",
      description: "Frontend tasks are expensive",
      rules: JSON.stringify({ taskBudget: "6.0000" }),
      appliesToTiers: ["GOVERNOR"],
      domains: ["frontend"],
      precedence: 200,
      effectiveFrom: null,
    });
    await h.policies.known("task-budgets", 1);
    await h.policies.known("frontend-budgets", 1);
  });
  after(async () => {
    await governance?.stop();
    await d?.stop();
  });

  it("denies a later task the goal's budget cannot cover, and the goal fails saying why", async () => {
    // api asks 1.0000 out of 2.0000; ui, after it, asks 6.0000 (frontend).
    const tasks = [task("api", "backend", "api"), task("ui", "frontend", "react", ["api"])];
    const { goalId } = await submitGoal(d.writer, user, { title: "Small budget", tasks, budget: "2.0000" });
    const final = await d.watch.final(goalId, 90_000);
    assert.equal(final.type, "GoalFailed", JSON.stringify(final.value));
    if (final.type !== "GoalFailed") return;
    assert.match(
      final.value.reason,
      /cannot dispatch task ui: its budget of 6.0000 was denied: budget exhausted: goal .* has a budget of 2.0000/,
    );

    const events = await governance.until("the allocation, the denial and their evaluations", () => {
      const seen = governance.of(goalId);
      return seen.filter((e) => e.type === "PolicyEvaluated").length >= 2 && seen;
    });
    const allocated = events.flatMap((e) => (e.type === "ResourceAllocated" ? [e.value] : []));
    assert.deepEqual(
      allocated.map((a) => [a.taskId, a.grantedAmount]),
      [["api", "1.0000"]],
    );
    const denied = events.flatMap((e) => (e.type === "ResourceDenied" ? [e.value] : []));
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.taskId, "ui");
    assert.match(denied[0]!.reasons[0]!, /budget exhausted/);
    const evaluations = events.flatMap((e) =>
      e.type === "PolicyEvaluated" && e.value.category === "RESOURCE_ALLOCATION" ? [e.value] : [],
    );
    assert.deepEqual(evaluations.map((e) => e.decision).sort(), ["ALLOW", "DENY"]);
    // The api task ran; ui never reached a mayor.
    const assignedUi = d.watch
      .of(goalId)
      .filter((e) => e.type === "TaskAssigned" && e.value.taskId === "ui" && e.value.assigneeTier === "MAYOR");
    assert.equal(assignedUi.length, 0);
  });

  it("alerts on tasks slower than a PERFORMANCE policy allows; budgets allocated, the goal completes", async () => {
    await definePolicy(d.writer, admin, {
      policyId: "fast-tasks",
      name: "Fast tasks",
      category: "PERFORMANCE",
      description: "Tasks finish within a millisecond",
      rules: JSON.stringify({ maxTaskDurationMs: 1 }),
      appliesToTiers: [],
      domains: [],
      precedence: 10,
      effectiveFrom: null,
    });
    await h.policies.known("fast-tasks", 1);
    const tasks = [task("api", "backend", "api"), task("ui", "frontend", "react", ["api"])];
    const { goalId } = await submitGoal(d.writer, user, { title: "Unlimited", tasks });
    const final = await d.watch.final(goalId, 90_000);
    assert.equal(final.type, "GoalCompleted", JSON.stringify(final.value));
    const alerts = await governance.until("two performance alerts", () => {
      const found = governance.of(goalId).flatMap((e) => (e.type === "PerformanceAlert" ? [e.value] : []));
      return found.length >= 2 && found;
    });
    for (const a of alerts) {
      assert.equal(a.metric, "task_duration_ms");
      assert.equal(a.threshold, 1);
      assert.ok(a.observed > 1);
      assert.equal(a.policyId, "fast-tasks");
    }
    await governance.until(
      "the allocations",
      () => governance.of(goalId).filter((e) => e.type === "ResourceAllocated").length >= 2,
    );
    // Each alert's evaluation follows it in the same transaction; the watcher may not have read it yet.
    const warnings = () =>
      governance
        .of(goalId)
        .filter(
          (e) => e.type === "PolicyEvaluated" && e.value.category === "PERFORMANCE" && e.value.decision === "WARN",
        );
    await governance.until("an evaluation for each alert", () => warnings().length >= alerts.length);
    assert.equal(warnings().length, alerts.length);
    const allocated = governance.of(goalId).filter((e) => e.type === "ResourceAllocated");
    assert.equal(allocated.length, 2);
  });
});
