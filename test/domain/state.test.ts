import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { evolve, initialState, loadOf, type HierarchyState } from "../../processors/domain/kernel/state.js";
import { formatCost, sumCosts, toUnits } from "../../processors/domain/kernel/costs.js";
import {
  assigned,
  completed,
  created,
  ev,
  failed,
  retried,
  started,
  stateOf,
  submitGoal,
  task,
} from "../support/decider-spec.js";
import { ok, runHierarchy, type Attempt } from "../support/hierarchy-run.js";

const fold = (events: readonly PolityEvent[]): HierarchyState => events.reduce(evolve, initialState());

/** A log with everything: a goal and a project, retries, a failed goal with its escalations and cancellations. */
function richLog(): PolityEvent[] {
  const dag = [
    task("a", "backend", "api"),
    task("b", "frontend", "react", ["a"]),
    task("c", "testing", "unit-test", ["a"]),
    task("d", "backend", "database", ["b", "c"]),
  ];
  const flaky = (a: Attempt) =>
    (a.taskId === "b" && a.attempt === 1) || a.goalId === "doomed"
      ? ({
          ok: false,
          reason: "flaky",
          kind: "EXECUTION_ERROR",
          retryable: true,
          durationMs: 1,
          exitCode: null,
          output: null,
        } as const)
      : ok(a);
  return runHierarchy({
    commands: [
      submitGoal({ goalId: "plain", tasks: dag }),
      submitGoal({ goalId: "doomed", tasks: dag, topology: "dgm" }),
      submitGoal({ goalId: "project", kind: "PROJECT", domainHints: ["testing"] }),
      submitGoal({ goalId: "bad", priority: 0 }),
    ],
    outcome: flaky,
    seed: 9,
    deferExecutions: true,
  }).log;
}

describe("evolve", () => {
  const log = richLog();

  it("the log under test holds every kind of fact", () => {
    const types = new Set(log.map((e) => e.type));
    for (const t of [
      "GoalSubmitted",
      "GoalRejected",
      "GoalCompleted",
      "GoalFailed",
      "PhaseTransitioned",
      "TaskAssigned",
      "TaskStarted",
      "TaskCompleted",
      "TaskFailed",
      "TaskRetried",
      "TaskCancelled",
      "EscalationRaised",
      "EscalationResolved",
      "ReportSubmitted",
    ] as const)
      assert.ok(types.has(t), `no ${t} in the log`);
  });

  it("is idempotent: folding every event twice gives the same state as folding it once", () => {
    const twice = log.flatMap((e) => [e, e]);
    assert.deepStrictEqual(fold(twice), fold(log));
  });

  it("is idempotent over a replay: folding the whole log again changes nothing", () => {
    const state = fold(log);
    const expected = fold(log);
    assert.deepStrictEqual(log.reduce(evolve, state), expected);
  });

  it("ends the rich log with nothing held and the goals in their final status", () => {
    const state = fold(log);
    assert.deepStrictEqual([...state.activeByAgent.keys()], []);
    assert.deepStrictEqual(Object.fromEntries([...state.goals].map(([id, g]) => [id, g.status])), {
      plain: "COMPLETED",
      doomed: "FAILED",
      project: "COMPLETED",
    });
    assert.equal(state.rejectedCommands.size, 1);
  });

  describe("stale and late events", () => {
    const T = task("t1", "backend", "api");
    const W1 = "aamas-worker-backend-api-1";
    const W2 = "aamas-worker-backend-api-2";
    /** Attempt 1 failed on W1; attempt 2 runs on W2. */
    const history = [
      created("g1", T),
      assigned("g1", T, "aamas-governor-backend"),
      assigned("g1", T, "aamas-mayor-backend-1"),
      assigned("g1", T, W1),
      started("g1", "t1", W1),
      failed("g1", "t1", W1),
      retried("g1", "t1", 2, [W1]),
      assigned("g1", T, W2, { attempt: 2 }),
      started("g1", "t1", W2, 2),
    ];

    it("has attempt 2 running on W2, W1 free", () => {
      const state = fold(history);
      const t = state.tasks.get("g1/t1")!;
      assert.deepStrictEqual([t.status, t.attempt, t.workerId, t.failedOn], ["RUNNING", 2, W2, [W1]]);
      assert.equal(loadOf(state, W1), 0);
      assert.equal(loadOf(state, W2), 1);
    });

    for (const [name, stale] of [
      ["TaskAssigned", assigned("g1", T, W1, { attempt: 1 })],
      ["TaskStarted", started("g1", "t1", W1, 1)],
      ["TaskFailed", failed("g1", "t1", W1, { attempt: 1, reason: "late" })],
      ["TaskRetried", retried("g1", "t1", 2, [W1])],
    ] as const) {
      it(`ignores a late ${name} of attempt 1`, () => {
        assert.deepStrictEqual(fold([...history, stale]), fold(history));
      });
    }

    it("takes a late success of attempt 1: the task is completed and attempt 2's worker let go", () => {
      // The first success completes the task, whichever attempt (kernel/status.ts taskMovesForward):
      // its worker folded it before the move to attempt 2, and every fold must agree with that one.
      const state = fold([...history, completed("g1", "t1", W1, { attempt: 1, cost: "9.0000", result: "late" })]);
      const t = state.tasks.get("g1/t1")!;
      assert.deepStrictEqual([t.status, t.attempt, t.result], ["COMPLETED", 1, "late"]);
      assert.equal(loadOf(state, W2), 0);
      // And in the other order, as the worker that did the work folds it: the same task.
      const ownFirst = fold([
        ...history.slice(0, 5),
        completed("g1", "t1", W1, { attempt: 1, cost: "9.0000", result: "late" }),
        ...history.slice(5),
      ]);
      assert.deepStrictEqual(
        [ownFirst.tasks.get("g1/t1")!.status, ownFirst.tasks.get("g1/t1")!.result],
        ["COMPLETED", "late"],
      );
    });

    it("does not hold a worker again for a late copy of the assignment of its failed attempt", () => {
      const failedHere = history.slice(0, 6);
      const state = fold([...failedHere, assigned("g1", T, W1)]);
      assert.equal(loadOf(state, W1), 0);
      assert.deepStrictEqual(state, fold(failedHere));
    });

    it("ignores a late TaskStarted of the current attempt once it finished", () => {
      const done = [...history, completed("g1", "t1", W2, { attempt: 2, cost: "1.5000" })];
      assert.deepStrictEqual(fold([...done, started("g1", "t1", W2, 2)]), fold(done));
      const t = fold(done).tasks.get("g1/t1")!;
      assert.deepStrictEqual([t.status, t.cost, t.lastFailure], ["COMPLETED", "1.5000", null]);
    });

    it("moves a status forward only: ACCEPTED after RUNNING changes nothing", () => {
      const late = ev("TaskAccepted", { goalId: "g1", taskId: "t1", agentId: W2, tier: "WORKER", attempt: 2 });
      assert.equal(fold([...history, late]).tasks.get("g1/t1")!.status, "RUNNING");
    });

    it("keeps the governor and mayor holding a failed task until it completes, and frees all then", () => {
      const failedState = fold(history.slice(0, 6));
      assert.deepStrictEqual([...failedState.activeByAgent.keys()].sort(), [
        "aamas-governor-backend",
        "aamas-mayor-backend-1",
      ]);
      const done = fold([...history, completed("g1", "t1", W2, { attempt: 2 })]);
      assert.deepStrictEqual([...done.activeByAgent.keys()], []);
    });
  });

  describe("a task known before its goal", () => {
    const T = task("t1", "backend", "api");

    it("creates a partial goal from TaskCreated, completed later by GoalSubmitted", () => {
      const submit = submitGoal({ tasks: [T], title: "Real title", priority: 8, topology: "dgm" });
      const commandId = (submit.value as { envelope: { eventId: string } }).envelope.eventId;
      const submitted = ev("GoalSubmitted", {
        goalId: "g1",
        commandId,
        kind: "GOAL",
        title: "Real title",
        description: "d",
        priority: 8,
        constraints: { lang: "ts" },
        deadline: null,
        domainHints: ["backend"],
        topology: "dgm",
        tasks: [T],
        budget: null,
      });
      const partial = stateOf([created("g1", T)]).goals.get("g1")!;
      assert.deepStrictEqual(
        [partial.partial, partial.kind, partial.title, partial.taskIds],
        [true, "GOAL", "g1", ["t1"]],
      );

      const state = stateOf([created("g1", T), submitted]);
      const goal = state.goals.get("g1")!;
      assert.deepStrictEqual(
        [goal.partial, goal.title, goal.priority, goal.topology, goal.domainHints, goal.constraints, goal.taskIds],
        [false, "Real title", 8, "dgm", ["backend"], { lang: "ts" }, ["t1"]],
      );
      assert.ok(goal.answeredCommands.has(commandId));
      assert.equal(state.tasks.get("g1/t1")!.status, "PENDING");
      // The same facts in the usual order give the same goal.
      const usual = stateOf([submitted, created("g1", T)]).goals.get("g1")!;
      assert.deepStrictEqual({ ...usual, status: goal.status }, goal);
    });

    it("guesses PROJECT for a partial goal whose task has a phase", () => {
      const phased = task("p1", "backend", "api", [], { phase: "DESIGN" });
      assert.equal(stateOf([created("g1", phased)]).goals.get("g1")!.kind, "PROJECT");
    });

    it("does not let a second GoalSubmitted overwrite a complete goal", () => {
      const facts: Payload<"GoalSubmitted"> = {
        goalId: "g1",
        commandId: "c1",
        kind: "GOAL",
        title: "First",
        description: "d",
        priority: 5,
        constraints: {},
        deadline: null,
        domainHints: [],
        topology: "aamas",
        tasks: null,
        budget: null,
      };
      const first = ev("GoalSubmitted", facts);
      const second = ev("GoalSubmitted", { ...facts, title: "Second", commandId: "c2" });
      const goal = stateOf([first, second]).goals.get("g1")!;
      assert.equal(goal.title, "First");
      assert.deepStrictEqual([...goal.answeredCommands], ["c1"]);
    });
  });

  describe("goal versions and phases", () => {
    it("keeps the highest goal version seen and counts phases once", () => {
      const at = (version: number) => ({ aggregate: { type: "GOAL" as const, id: "g1", version } });
      const enter = (from: null | "INITIATION", to: "INITIATION" | "FEASIBILITY", version: number) =>
        ev(
          "PhaseTransitioned",
          { goalId: "g1", fromPhase: from, toPhase: to, requestId: null, phaseDurationMs: null },
          at(version),
        );
      const events = [
        created("g1", task("x", "backend", "api", [], { phase: "INITIATION" })),
        enter(null, "INITIATION", 3),
        enter("INITIATION", "FEASIBILITY", 5),
        enter("INITIATION", "FEASIBILITY", 5),
        enter(null, "INITIATION", 3),
      ];
      const goal = stateOf(events).goals.get("g1")!;
      assert.deepStrictEqual([goal.phase, goal.phasesDone, goal.version], ["FEASIBILITY", ["INITIATION"], 5]);
    });
  });
});

describe("costs", () => {
  it("adds decimal(18,4) amounts exactly", () => {
    assert.equal(sumCosts(["0.1000", "0.2000", "1.5", "0.0001"]), "1.8001");
    assert.equal(sumCosts([]), "0.0000");
    assert.equal(formatCost(toUnits("-2.5") + toUnits("1.25")), "-1.2500");
    assert.equal(toUnits("12.34567"), 123456n);
  });
});

describe("settling ended goals", () => {
  const goalEvents = (end: "GoalCompleted" | "GoalFailed") => {
    const log = richLog();
    const goalId = end === "GoalCompleted" ? "plain" : "doomed";
    assert.ok(
      log.some((e) => e.type === end && (e.value as { goalId: string }).goalId === goalId),
      `${goalId} ends with ${end}`,
    );
    return { log, goalId };
  };

  const settling = (events: readonly PolityEvent[]) => events.reduce(evolve, initialState({ keepEnded: 0 }));
  for (const end of ["GoalCompleted", "GoalFailed"] as const) {
    it(`lets a goal's tasks go once it ends (${end}), and a late task event does not bring them back`, () => {
      const { log, goalId } = goalEvents(end);
      const state = settling(log);
      const goal = state.goals.get(goalId)!;
      assert.equal(goal.settled, true);
      assert.equal(goal.status, end === "GoalCompleted" ? "COMPLETED" : "FAILED");
      assert.deepEqual(
        [...state.tasks.keys()].filter((k) => k.startsWith(`${goalId}/`)),
        [],
      );
      for (const held of state.activeByAgent.values())
        assert.ok(![...held].some((k) => k.startsWith(`${goalId}/`)), "no agent holds its tasks");
      const late = log.find((e) => e.type === "TaskCompleted" && (e.value as { goalId: string }).goalId === goalId);
      if (late) evolve(state, late);
      assert.equal(state.tasks.size, settling(log).tasks.size);
      // Goals still running keep theirs.
      for (const g of state.goals.values())
        if (!g.settled)
          assert.equal(g.taskIds.length, [...state.tasks.values()].filter((t) => t.goalId === g.goalId).length);
    });
  }

  it("keeps the tasks of the most recently ended goals (by default 8; all for time travel)", () => {
    const log = richLog();
    for (const kept of [fold(log), log.reduce(evolve, initialState({ keepEnded: Infinity }))]) {
      assert.equal(kept.goals.get("plain")!.settled, false);
      assert.equal([...kept.tasks.keys()].filter((k) => k.startsWith("plain/")).length, 4);
    }
    // With room for one ended goal, the first to end is settled when the second ends.
    const one = log.reduce(evolve, initialState({ keepEnded: 1 }));
    const ends = log.filter((e) => e.type === "GoalCompleted" || e.type === "GoalFailed").map((e) => e.value.goalId);
    assert.ok(ends.length >= 2, ends.join(","));
    assert.equal(one.goals.get(ends[0]!)!.settled, true);
    assert.equal(one.goals.get(ends.at(-1)!)!.settled, false);
  });

  it("holds a goal whose end is read before anything else of it as a settled tombstone", () => {
    const log = richLog();
    const end = log.find((e) => e.type === "GoalCompleted" && e.value.goalId === "plain")!;
    const state = evolve(initialState({ keepEnded: 0 }), end);
    const rest = log.filter((e) => e !== end && (e.value as { goalId?: string }).goalId === "plain");
    for (const e of rest) evolve(state, e);
    assert.equal(state.goals.get("plain")?.status, "COMPLETED");
    assert.equal([...state.tasks.keys()].filter((k) => k.startsWith("plain/")).length, 0);
  });
});
