import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Topology } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { PHASES } from "../../processors/domain/planner.js";
import { DIRECTORY, requestPhase, submitGoal, task } from "../support/decider-spec.js";
import { entries, ok, runHierarchy, type Attempt, type RunOptions, type RunResult } from "../support/hierarchy-run.js";

/** Ten tasks over three domains; several become ready at once on the same specialization. */
const DAG = [
  task("fe-design", "frontend", "css"),
  task("be-schema", "backend", "database"),
  task("be-api", "backend", "api", ["be-schema"]),
  task("be-auth", "backend", "api", ["be-schema"]),
  task("fe-pages", "frontend", "react", ["fe-design"]),
  task("fe-cart", "frontend", "react", ["fe-design", "be-api"]),
  task("fe-checkout", "frontend", "react", ["be-auth", "fe-cart"]),
  task("qa-unit", "testing", "unit-test", ["be-api", "be-auth"]),
  task("qa-e2e", "testing", "e2e-test", ["fe-pages", "fe-checkout"]),
  task("release", "backend", "api", ["qa-unit", "qa-e2e"]),
];

const TOPOLOGIES: Topology[] = ["aamas", "dgm"];

function run(topology: Topology, extra: Partial<RunOptions> = {}): RunResult {
  return runHierarchy({ commands: [submitGoal({ topology, tasks: DAG })], ...extra });
}

/** No task starts before every one of its dependencies completed (by position in the log). */
function assertDependenciesFirst(log: readonly PolityEvent[], tasks = DAG) {
  const completedAt = new Map<string, number>();
  for (const { index, value } of entries(log, "TaskCompleted"))
    if (!completedAt.has(`${value.goalId}/${value.taskId}`)) completedAt.set(`${value.goalId}/${value.taskId}`, index);
  const starts = entries(log, "TaskStarted");
  assert.ok(starts.length >= tasks.length, `only ${starts.length} TaskStarted for ${tasks.length} tasks`);
  for (const { index, value } of starts) {
    const spec = tasks.find((t) => t.id === value.taskId)!;
    for (const dep of spec.dependsOn) {
      const done = completedAt.get(`${value.goalId}/${dep}`);
      assert.ok(done !== undefined && done < index, `${value.taskId} started at ${index} before ${dep} completed`);
    }
  }
}

function completionsPerTask(log: readonly PolityEvent[]): Record<string, number> {
  const count: Record<string, number> = {};
  for (const { value } of entries(log, "TaskCompleted")) count[value.taskId] = (count[value.taskId] ?? 0) + 1;
  return count;
}

const once = Object.fromEntries(DAG.map((t) => [t.id, 1]));

/** No worker ever holds more attempts than its capacity (assigned and not yet finished). */
function assertCapacity(log: readonly PolityEvent[]) {
  const holding = new Map<string, Set<string>>();
  for (const e of log) {
    if (e.type === "TaskAssigned" && e.value.assigneeTier === "WORKER") {
      const set = holding.get(e.value.assigneeId) ?? new Set();
      set.add(`${e.value.goalId}/${e.value.taskId}#${e.value.attempt}`);
      holding.set(e.value.assigneeId, set);
      const capacity = DIRECTORY.get(e.value.assigneeId)!.capacity;
      assert.ok(set.size <= capacity, `${e.value.assigneeId} holds ${set.size} > capacity ${capacity}`);
    }
    if (e.type === "TaskCompleted" || e.type === "TaskFailed")
      holding.get(e.value.agentId)?.delete(`${e.value.goalId}/${e.value.taskId}#${e.value.attempt}`);
  }
}

/** Every host's view ends with every task completed and nobody holding anything. */
function assertSettled(result: RunResult, goalIds = ["g1"]) {
  for (const host of Object.values(result.hosts)) {
    for (const [key, t] of host.state.tasks)
      assert.equal(t.status, "COMPLETED", `${host.role} sees ${key} as ${t.status}`);
    assert.deepStrictEqual([...host.state.activeByAgent.keys()], [], `${host.role} still counts load`);
  }
  for (const goalId of goalIds) assert.equal(result.hosts.president.state.goals.get(goalId)?.status, "COMPLETED");
}

for (const topology of TOPOLOGIES) {
  describe(`hierarchy flow (${topology})`, () => {
    it("completes a 10-task DAG over three domains, dependencies first, each task completed once", () => {
      const result = run(topology);
      const goals = entries(result.log, "GoalCompleted");
      assert.equal(goals.length, 1);
      assert.equal(goals[0]!.value.tasksCompleted, 10);
      assert.equal(goals[0]!.value.totalCost, "0.1000");
      // After the goal completed, only its final snapshot, its announcement and reports of tiers may follow.
      const after = result.log.slice(goals[0]!.index + 1);
      assert.deepStrictEqual(
        [...new Set(after.map((e) => e.type))].filter(
          (t) => t !== "ReportSubmitted" && t !== "GoalSnapshotTaken" && t !== "NotificationBroadcast",
        ),
        [],
      );
      assert.deepStrictEqual(
        after.flatMap((e) => (e.type === "NotificationBroadcast" ? [e.value.subject] : [])),
        ["goal-completed"],
      );
      assert.equal(entries(result.log, "GoalSnapshotTaken").at(-1)!.value.status, "COMPLETED");
      assert.deepStrictEqual(completionsPerTask(result.log), once);
      assertDependenciesFirst(result.log);
      assertCapacity(result.log);
      assertSettled(result);
      assert.equal(entries(result.log, "TaskFailed").length, 0);
    });

    it("sends every task down every tier of the topology", () => {
      const { log } = run(topology);
      const tiers = new Map<string, string[]>();
      for (const { value } of entries(log, "TaskAssigned"))
        tiers.set(value.taskId, [...(tiers.get(value.taskId) ?? []), value.assigneeTier]);
      const path = topology === "aamas" ? ["GOVERNOR", "MAYOR", "WORKER"] : ["SUB_MASTER", "WORKER"];
      assert.deepStrictEqual(Object.fromEntries(tiers), Object.fromEntries(DAG.map((t) => [t.id, path])));
      for (const { value } of entries(log, "TaskAssigned").filter((a) => a.value.assigneeTier === "WORKER")) {
        const w = DIRECTORY.get(value.assigneeId)!;
        const spec = DAG.find((t) => t.id === value.taskId)!;
        assert.equal(w.topology, topology);
        assert.equal(w.domain, spec.domain);
        assert.equal(w.specialization, spec.specialization);
      }
    });

    for (const seed of [1, 7, 42, 2024, 99991]) {
      it(`completes under a shuffled interleaving with overlapping executions (seed ${seed})`, () => {
        const result = run(topology, { seed, deferExecutions: true });
        assert.equal(entries(result.log, "GoalCompleted").length, 1);
        assert.deepStrictEqual(completionsPerTask(result.log), once);
        assertDependenciesFirst(result.log);
        assertCapacity(result.log);
        assertSettled(result);
      });
    }

    it("retries failed attempts on other workers and still completes every task once", () => {
      // Every task's first attempt fails; the api tasks fail twice.
      const outcome = (a: Attempt) =>
        a.attempt === 1 || (a.taskId.startsWith("be-a") && a.attempt === 2)
          ? ({
              ok: false,
              reason: `flaky ${a.taskId}#${a.attempt}`,
              kind: "EXECUTION_ERROR",
              retryable: true,
              durationMs: 1,
              exitCode: null,
              output: null,
            } as const)
          : ok(a);
      const result = run(topology, { outcome, seed: 5, deferExecutions: true });
      assert.equal(entries(result.log, "GoalCompleted").length, 1);
      assert.deepStrictEqual(completionsPerTask(result.log), once);
      assert.equal(entries(result.log, "TaskRetried").length, 12);
      // A retry goes to another worker whenever its dispatcher has one of the specialization.
      const attempts = new Map<string, string[]>();
      for (const a of result.executions) attempts.set(a.taskId, [...(attempts.get(a.taskId) ?? []), a.agentId]);
      let elsewhere = 0;
      for (const [taskId, workers] of attempts) {
        const spec = DAG.find((t) => t.id === taskId)!;
        const dispatcher = DIRECTORY.get(workers[0]!)!.superiorId!;
        if (DIRECTORY.workersUnder(dispatcher, spec.specialization).length > 1) {
          assert.notEqual(workers[1], workers[0], `${taskId} retried on the same worker`);
          elsewhere++;
        }
      }
      assert.ok(elsewhere >= 3, `only ${elsewhere} tasks could be retried elsewhere`);
      assertDependenciesFirst(result.log);
      assertSettled(result);
    });

    it("fails the goal when a task runs out of attempts, and cancels what is left", () => {
      const outcome = (a: Attempt) =>
        a.taskId === "be-api"
          ? ({
              ok: false,
              reason: "api down",
              kind: "EXECUTION_ERROR",
              retryable: true,
              durationMs: 1,
              exitCode: null,
              output: null,
            } as const)
          : ok(a);
      const { log, hosts } = run(topology, { outcome });
      const failedGoal = entries(log, "GoalFailed");
      assert.equal(failedGoal.length, 1);
      assert.deepStrictEqual(failedGoal[0]!.value.failedTaskIds, ["be-api"]);
      assert.equal(entries(log, "GoalCompleted").length, 0);
      // The default limits: 5 attempts per delivery, 3 deliveries in the domain.
      assert.equal(entries(log, "TaskFailed").filter((f) => f.value.taskId === "be-api").length, 15);
      const escalations = entries(log, "EscalationRaised").map((e) => [e.value.fromTier, e.value.toTier]);
      assert.deepStrictEqual(
        escalations,
        topology === "aamas"
          ? [
              ["MAYOR", "GOVERNOR"],
              ["MAYOR", "GOVERNOR"],
              ["MAYOR", "GOVERNOR"],
              ["GOVERNOR", "PRESIDENT"],
            ]
          : [["SUB_MASTER", "MASTER"]],
      );
      const resolved = entries(log, "EscalationResolved").map((e) => e.value.outcome);
      assert.deepStrictEqual(
        resolved,
        topology === "aamas" ? ["REASSIGN", "REASSIGN", "ESCALATED_FURTHER", "FAIL_GOAL"] : ["FAIL_GOAL"],
      );
      // Whatever was not completed was cancelled; nobody holds anything any more.
      for (const host of Object.values(hosts)) {
        for (const t of host.state.tasks.values()) assert.ok(t.status === "COMPLETED" || t.status === "CANCELLED");
        assert.deepStrictEqual([...host.state.activeByAgent.keys()], [], `${host.role} still counts load`);
      }
      // Nothing depending on be-api ever started.
      const blocked = ["be-api", "fe-cart", "fe-checkout", "qa-unit", "qa-e2e", "release"];
      const startedAfter = entries(log, "TaskStarted").filter((s) => blocked.slice(1).includes(s.value.taskId));
      assert.deepStrictEqual(startedAfter, []);
    });

    it("runs several goals at once over shared workers", () => {
      const result = runHierarchy({
        commands: ["g1", "g2", "g3"].map((goalId) => submitGoal({ goalId, topology, tasks: DAG })),
        seed: 3,
        deferExecutions: true,
      });
      assert.deepStrictEqual(
        entries(result.log, "GoalCompleted")
          .map((g) => g.value.goalId)
          .sort(),
        ["g1", "g2", "g3"],
      );
      assert.equal(entries(result.log, "TaskCompleted").length, 30);
      assertDependenciesFirst(result.log);
      assertCapacity(result.log);
      assertSettled(result, ["g1", "g2", "g3"]);
    });

    it("runs a planned project through all eight phases", () => {
      const result = runHierarchy({
        commands: [submitGoal({ topology, kind: "PROJECT", domainHints: [] })],
        seed: 11,
        deferExecutions: true,
      });
      const phases = entries(result.log, "PhaseTransitioned").map((p) => p.value.toPhase);
      assert.deepStrictEqual(phases, [...PHASES]);
      const completed = entries(result.log, "GoalCompleted");
      assert.equal(completed.length, 1);
      // Three domains of two specializations each, eight phases.
      assert.equal(completed[0]!.value.tasksCompleted, 48);
      assertSettled(result);
    });

    it("runs a project behind a manual gate, moving on only when asked", () => {
      let asked = 0;
      const result = runHierarchy({
        commands: [
          submitGoal({ topology, kind: "PROJECT", domainHints: ["backend"], constraints: { phaseGate: "manual" } }),
        ],
        onIdle: (log) => {
          const current = entries(log, "PhaseTransitioned").at(-1)!.value.toPhase;
          const next = PHASES[PHASES.indexOf(current) + 1];
          if (!next || entries(log, "GoalCompleted").length > 0) return [];
          asked++;
          return [requestPhase("g1", current, next)];
        },
      });
      assert.equal(asked, 7);
      assert.equal(entries(result.log, "PhaseTransitionRejected").length, 0);
      assert.deepStrictEqual(
        entries(result.log, "PhaseTransitioned").map((p) => p.value.requestId !== null),
        [false, true, true, true, true, true, true, true],
      );
      assert.equal(entries(result.log, "GoalCompleted")[0]?.value.tasksCompleted, 16);
      assertSettled(result);
    });
  });
}
