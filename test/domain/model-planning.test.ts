// Planning by a language model as a recorded step, given/when/then on the president's decider:
// the model planner is asked with PlanRequested, its answer (a PlanningFinished from the host)
// is recorded as PlanProposed with the president's checks, then decomposed, asked again with the
// problems, or given up with every reason. No model is called here: the answers are given.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PlanningFinished } from "../../processors/domain/decider.js";
import type { PlanningConfig } from "../../processors/domain/planner.js";
import { president } from "../../processors/domain/president.js";
import { evolve } from "../../processors/domain/kernel/state.js";
import type { TaskSpec } from "../../schemas/generated/types.js";
import {
  asEvent,
  context,
  ofType,
  requestPhase,
  spec,
  stateOf,
  submitGoal,
  task,
  type Given,
} from "../support/decider-spec.js";

const MODEL_PLANNING: PlanningConfig = { planner: "model", model: "local", maxAttempts: 2, models: ["local"] };
const ctx = context({ planning: () => MODEL_PLANNING });
const USAGE = {
  model: "embedded:tiny.gguf",
  tokensIn: 120,
  tokensOut: 40,
  calls: 1,
  latencyMs: 900,
  promptDigest: "p".repeat(64),
  answerDigest: "a".repeat(64),
};

function answer(requestId: string, tasks: TaskSpec[], error: string | null = null): PlanningFinished {
  return { type: "PlanningFinished", goalId: "g1", requestId, planner: "model/v1", tasks, usage: USAGE, error };
}

/** The president's decisions on a submitted goal without tasks, under the model planner. */
function submitted(overrides: Parameters<typeof submitGoal>[0] = {}): Given[] {
  return spec(president, ctx).when(submitGoal({ domainHints: ["backend", "testing"], ...overrides })).decisions;
}

const GOOD = [task("t1", "backend", "api"), task("t2", "testing", "unit-test", ["t1"])];

describe("president: planning by a model", () => {
  it("asks for a plan instead of decomposing, naming the model, domains and specializations", () => {
    spec(president, ctx)
      .when(submitGoal({ domainHints: ["backend", "testing"], description: "An API with tests" }))
      .then([
        { type: "GoalSubmitted", goalId: "g1", description: "An API with tests" },
        { type: "GoalValidated" },
        {
          type: "PlanRequested",
          goalId: "g1",
          requestId: "g1:goal:1",
          phase: null,
          attempt: 1,
          maxAttempts: 2,
          planner: "model",
          model: "local",
          domains: ["backend", "testing"],
          specializations: { backend: ["api", "database"], testing: ["e2e-test", "unit-test"] },
          feedback: [],
        },
      ]);
  });

  it("records a valid plan as accepted, then decomposes it and releases its roots", () => {
    spec(president, ctx)
      .given(submitted())
      .when(answer("g1:goal:1", GOOD))
      .then([
        {
          type: "PlanProposed",
          requestId: "g1:goal:1",
          attempt: 1,
          planner: "model/v1",
          usage: USAGE,
          tasks: GOOD,
          accepted: true,
          problems: [],
          error: null,
        },
        { type: "GoalDecomposed", planner: "model/v1", tasks: GOOD },
        { type: "TaskCreated", task: GOOD[0]! },
        { type: "TaskCreated", task: GOOD[1]! },
        { type: "TaskAssigned", taskId: "t1", assigneeId: "aamas-governor-backend" },
      ]);
  });

  it("asks again with the problems of an invalid plan in the request", () => {
    const cyclic = [task("t1", "backend", "api", ["t2"]), task("t2", "backend", "api", ["t1"])];
    const decisions = spec(president, ctx)
      .given(submitted())
      .when(answer("g1:goal:1", cyclic))
      .thenTypes(["PlanProposed", "PlanRequested"]);
    const [proposed] = ofType(decisions, "PlanProposed");
    assert.equal(proposed!.accepted, false);
    assert.match(proposed!.problems.join(), /cycle: t1 -> t2 -> t1|cycle: t2 -> t1 -> t2/);
    const [again] = ofType(decisions, "PlanRequested");
    assert.equal(again!.attempt, 2);
    assert.equal(again!.requestId, "g1:goal:2");
    assert.deepEqual(again!.feedback, proposed!.problems);
  });

  it("refuses domains outside the goal's, specializations no worker has, and unknown dependencies", () => {
    const bad = [
      task("t1", "frontend", "react"),
      task("t2", "backend", "quantum"),
      task("t3", "backend", "api", ["t9"]),
    ];
    const [proposed] = ofType(
      spec(president, ctx).given(submitted()).when(answer("g1:goal:1", bad)).decisions,
      "PlanProposed",
    );
    // A broken graph is reported first: routing is checked on a sound graph only.
    assert.deepEqual(proposed!.problems, [
      'task "t3" depends on unknown task "t9"',
      'task "t1": domain "frontend" is not one of the goal\'s domains (backend, testing)',
    ]);
    const [second] = ofType(
      spec(president, ctx)
        .given(submitted())
        .when(answer("g1:goal:1", bad.slice(0, 2))).decisions,
      "PlanProposed",
    );
    assert.deepEqual(second!.problems, [
      'task "t1": domain "frontend" is not one of the goal\'s domains (backend, testing)',
    ]);
    const [third] = ofType(
      spec(president, ctx)
        .given(submitted())
        .when(answer("g1:goal:1", [bad[1]!])).decisions,
      "PlanProposed",
    );
    assert.deepEqual(third!.problems, ['task "t2": no worker of backend has specialization "quantum"']);
  });

  it("gives the goal up after the last attempt, rejected with every attempt's reasons", () => {
    const first = [...submitted(), ...spec(president, ctx).given(submitted()).when(answer("g1:goal:1", [])).decisions];
    const decisions = spec(president, ctx)
      .given(first)
      .when(answer("g1:goal:2", [], "the model did not answer within 100 ms"))
      .thenTypes(["PlanProposed", "GoalRejected", "NotificationBroadcast"]);
    const [rejected] = ofType(decisions, "GoalRejected");
    assert.equal(rejected!.code, "PLANNING_FAILED");
    assert.deepEqual(rejected!.reasons, [
      "plan attempt 1: the task graph is empty: give at least one task, or none to let the planner decompose",
      "plan attempt 2: the model did not answer within 100 ms",
      "no valid plan after 2 attempt(s)",
    ]);
    // The goal is final: a late answer decides nothing.
    const state = stateOf([...first, ...decisions]);
    assert.equal(state.goals.get("g1")!.status, "REJECTED");
    assert.equal(state.awaitingPlans.size, 0);
  });

  it("decides nothing on an answer to a request already answered, or for a stopped goal", () => {
    const done = [...submitted(), ...spec(president, ctx).given(submitted()).when(answer("g1:goal:1", GOOD)).decisions];
    spec(president, ctx).given(done).when(answer("g1:goal:1", GOOD)).thenNothing();
    spec(president, ctx).given(submitted()).when(answer("g1:goal:7", GOOD)).thenNothing();
  });

  it("keeps the awaited plan in the state across a restart, so the host asks the planner again", () => {
    let state = stateOf(submitted());
    assert.deepEqual([...state.awaitingPlans], ["g1"]);
    assert.equal(state.goals.get("g1")!.planning!.requestId, "g1:goal:1");
    const proposed = spec(president, ctx).given(submitted()).when(answer("g1:goal:1", GOOD)).decisions;
    for (const d of proposed) state = evolve(state, asEvent(d));
    assert.equal(state.awaitingPlans.size, 0);
    assert.equal(state.goals.get("g1")!.planning, null);
  });

  it("lets a goal choose its planner by constraint, and refuses an unknown one naming the values", () => {
    spec(president, ctx)
      .when(submitGoal({ domainHints: ["backend"], constraints: { planner: "template" } }))
      .thenMatches((ds) => ds.some((d) => d.type === "GoalDecomposed"));
    spec(president)
      .when(submitGoal({ domainHints: ["backend"], constraints: { planner: "model" } }))
      .then([
        {
          type: "GoalRejected",
          code: "INVALID_REQUEST",
          reasons: [
            'constraints.planner is "model" but the topology configures no model: add one under "models" in the topology file',
          ],
        },
        { type: "NotificationBroadcast" },
      ]);
    spec(president, ctx)
      .when(submitGoal({ constraints: { planner: "oracle" } }))
      .thenMatches((ds) =>
        ofType(ds, "GoalRejected").some(
          (r) => r.reasons[0] === 'constraints.planner must be one of template, model, got "oracle"',
        ),
      );
  });

  it("plans each phase of a project, ids prefixed by the phase, after the phase's duties", () => {
    const project = spec(president, ctx).when(
      submitGoal({ kind: "PROJECT", domainHints: ["backend"], constraints: { phaseGate: "manual" } }),
    ).decisions;
    const [request] = ofType(project, "PlanRequested");
    assert.equal(request!.phase, "INITIATION");
    assert.equal(request!.requestId, "g1:INITIATION:1");
    const phaseTask = { ...task("initiation-t1", "backend", "api"), phase: "INITIATION" as const };
    const accepted = spec(president, ctx)
      .given(project)
      .when({ ...answer("g1:INITIATION:1", [phaseTask]) })
      .thenTypes(["PlanProposed", "GoalDecomposed", "TaskCreated", "TaskAssigned"]);
    // A task of another phase is refused.
    const [wrong] = ofType(
      spec(president, ctx)
        .given(project)
        .when(answer("g1:INITIATION:1", [{ ...phaseTask, phase: "DESIGN" }])).decisions,
      "PlanProposed",
    );
    assert.deepEqual(wrong!.problems, ['task "initiation-t1": phase DESIGN is not the phase planned (INITIATION)']);
    // Once the phase is done and the gate passed, the next phase is planned the same way.
    const completion = asEvent(completedOf("initiation-t1"));
    const done = [
      ...project,
      ...accepted,
      completion,
      ...spec(president, ctx)
        .given([...project, ...accepted])
        .when(completion).decisions,
    ];
    spec(president, ctx)
      .given(done)
      .when(requestPhase("g1", "INITIATION", "FEASIBILITY"))
      .thenMatches((ds) => ofType(ds, "PlanRequested").some((r) => r.requestId === "g1:FEASIBILITY:1"));
  });
});

function completedOf(taskId: string) {
  return {
    type: "TaskCompleted" as const,
    payload: {
      goalId: "g1",
      taskId,
      agentId: "aamas-worker-backend-api-1",
      attempt: 1,
      result: "ok",
      durationMs: 1,
      outputs: {},
      cost: "0.0000",
      exitCode: null,
      usage: null,
    },
    actor: { id: "aamas-worker-backend-api-1", tier: "WORKER" as const },
    aggregate: { type: "TASK" as const, id: taskId, version: -1 },
  };
}
