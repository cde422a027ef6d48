import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { president, SNAPSHOT_EVERY_COMPLETIONS } from "../../processors/domain/president.js";
import {
  NOW,
  completed,
  context,
  escalation,
  failed,
  ofType,
  requestPhase,
  spec,
  submitGoal,
  task,
  type Given,
} from "../support/decider-spec.js";

const GOV = {
  backend: "aamas-governor-backend",
  frontend: "aamas-governor-frontend",
  testing: "aamas-governor-testing",
};

/** api and ui are roots; db needs api; e2e needs api and ui. */
const DAG = [
  task("api", "backend", "api"),
  task("db", "backend", "database", ["api"]),
  task("ui", "frontend", "react"),
  task("e2e", "testing", "e2e-test", ["api", "ui"]),
];

/** The facts of an accepted goal, as the president's own decisions. */
function acceptedGoal(overrides: Parameters<typeof submitGoal>[0] = {}): Given[] {
  return spec(president).when(submitGoal({ tasks: DAG, ...overrides })).decisions;
}

describe("president: submission", () => {
  it("accepts a goal, creates its tasks and releases only the tasks without dependencies, each to its domain's governor", () => {
    spec(president)
      .when(submitGoal({ tasks: DAG, priority: 7 }))
      .then([
        { type: "GoalSubmitted", goalId: "g1", kind: "GOAL", topology: "aamas", priority: 7 },
        { type: "GoalValidated", goalId: "g1" },
        { type: "GoalDecomposed", goalId: "g1", planner: "explicit", phase: null, tasks: DAG },
        // The topology's worker retry limit, 5 by default.
        { type: "TaskCreated", goalId: "g1", task: DAG[0]!, priority: 7, maxAttempts: 5 },
        { type: "TaskCreated", task: DAG[1]! },
        { type: "TaskCreated", task: DAG[2]! },
        { type: "TaskCreated", task: DAG[3]! },
        {
          type: "TaskAssigned",
          taskId: "api",
          assigneeId: GOV.backend,
          assigneeTier: "GOVERNOR",
          assignedBy: "aamas-president",
          attempt: 1,
          priority: 7,
        },
        { type: "TaskAssigned", taskId: "ui", assigneeId: GOV.frontend, assigneeTier: "GOVERNOR" },
      ]);
  });

  it("gives the goal events consecutive versions and the actor of the president", () => {
    const decisions = spec(president).when(submitGoal({ tasks: DAG })).decisions;
    const goalEvents = decisions.filter((d) => d.aggregate.type === "GOAL");
    assert.deepStrictEqual(
      goalEvents.map((d) => [d.type, d.aggregate.version]),
      [
        ["GoalSubmitted", 1],
        ["GoalValidated", 2],
        ["GoalDecomposed", 3],
      ],
    );
    assert.deepStrictEqual(decisions[0]!.actor, { id: "aamas-president", tier: "PRESIDENT" });
  });

  it("plans with the template planner when no tasks are given, over the hinted domains", () => {
    const created = ofType(
      spec(president)
        .when(submitGoal({ domainHints: ["backend", "testing"] }))
        .then([
          { type: "GoalSubmitted" },
          { type: "GoalValidated" },
          { type: "GoalDecomposed", planner: "templates/v1" },
          { type: "TaskCreated" },
          { type: "TaskCreated" },
          { type: "TaskCreated" },
          { type: "TaskCreated" },
          { type: "TaskCreated" },
          { type: "TaskAssigned", taskId: "backend-api", assigneeId: GOV.backend },
          { type: "TaskAssigned", taskId: "testing-e2e-test", assigneeId: GOV.testing },
        ]),
      "TaskCreated",
    );
    assert.deepStrictEqual(
      created.map((c) => [c.task.id, c.task.dependsOn]),
      [
        ["backend-api", []],
        ["backend-database", ["backend-api"]],
        ["testing-e2e-test", []],
        ["testing-unit-test", ["testing-e2e-test"]],
        ["integrate", ["backend-api", "backend-database", "testing-e2e-test", "testing-unit-test"]],
      ],
    );
  });

  it("in dgm, the master releases tasks to the sub-master of the domain", () => {
    spec(president)
      .when(submitGoal({ topology: "dgm", tasks: [task("api", "backend", "api")] }))
      .then([
        { type: "GoalSubmitted", topology: "dgm" },
        { type: "GoalValidated" },
        { type: "GoalDecomposed" },
        { type: "TaskCreated" },
        {
          type: "TaskAssigned",
          taskId: "api",
          assigneeId: "dgm-submaster-backend",
          assigneeTier: "SUB_MASTER",
          assignedBy: "dgm-master",
        },
      ]);
  });

  it("answers a command once: the same SubmitGoal decided again after its GoalSubmitted is folded yields nothing", () => {
    const command = submitGoal({ tasks: DAG });
    const first = spec(president).when(command).decisions;
    assert.equal(first.length, 9);
    spec(president).given(first).when(command).thenNothing();
  });

  it("rejects a second goal with a taken id as DUPLICATE_GOAL", () => {
    spec(president)
      .given(acceptedGoal())
      .when(submitGoal({ tasks: DAG }))
      .then([
        {
          type: "GoalRejected",
          goalId: "g1",
          code: "DUPLICATE_GOAL",
          reasons: ['goal id "g1" is already taken; submit with a new goalId'],
        },
        // Announced to the hierarchy the submission named: every aamas tier, the goal's domains.
        {
          type: "NotificationBroadcast",
          subject: "goal-rejected",
          severity: "WARNING",
          goalId: "g1",
          audienceTiers: ["PRESIDENT", "GOVERNOR", "MAYOR", "WORKER"],
          audienceDomains: ["backend", "frontend", "testing"],
          message:
            'Goal "Build the shop" (g1) rejected: DUPLICATE_GOAL: goal id "g1" is already taken; submit with a new goalId',
        },
      ]);
  });

  it("rejects priority 0 as INVALID_REQUEST, naming the priority", () => {
    spec(president)
      .when(submitGoal({ priority: 0 }))
      .then([
        { type: "GoalRejected", code: "INVALID_REQUEST", reasons: ["priority must be an integer from 1 to 10, got 0"] },
        { type: "NotificationBroadcast", subject: "goal-rejected", goalId: "g1" },
      ]);
  });

  it("rejects a rejected command only once", () => {
    const command = submitGoal({ priority: 0 });
    const rejected = spec(president).when(command).decisions;
    assert.equal(rejected[0]!.type, "GoalRejected");
    spec(president).given(rejected).when(command).thenNothing();
  });

  it("rejects a past deadline and an empty title together", () => {
    spec(president)
      .when(submitGoal({ title: "  ", deadline: new Date(NOW.getTime() - 1) }))
      .then([
        {
          type: "GoalRejected",
          code: "INVALID_REQUEST",
          reasons: ["deadline 2030-01-01T11:59:59.999Z is already past", "title is empty"],
        },
        // An empty title: the notice names the goal by its id.
        {
          type: "NotificationBroadcast",
          message:
            "Goal g1 rejected: INVALID_REQUEST: deadline 2030-01-01T11:59:59.999Z is already past; title is empty",
        },
      ]);
  });

  it("rejects a task graph with a cycle as INVALID_TASK_GRAPH, with the reason", () => {
    spec(president)
      .when(submitGoal({ tasks: [task("a", "backend", "api", ["b"]), task("b", "backend", "api", ["a"])] }))
      .then([
        { type: "GoalRejected", code: "INVALID_TASK_GRAPH", reasons: ["the tasks form a cycle: a -> b -> a"] },
        { type: "NotificationBroadcast", subject: "goal-rejected", goalId: "g1" },
      ]);
  });

  it("rejects a project task without a phase", () => {
    spec(president)
      .when(submitGoal({ kind: "PROJECT", tasks: [task("a", "backend", "api")] }))
      .then([
        { type: "GoalRejected", code: "INVALID_TASK_GRAPH", reasons: ['project task "a" has no phase'] },
        { type: "NotificationBroadcast", subject: "goal-rejected", goalId: "g1" },
      ]);
  });

  it("rejects an unknown domain hint as UNKNOWN_DOMAIN", () => {
    spec(president)
      .when(submitGoal({ domainHints: ["backend", "ops"] }))
      .then([
        {
          type: "GoalRejected",
          code: "UNKNOWN_DOMAIN",
          reasons: ['domain hint "ops" has no governor in aamas; known domains: backend, frontend, testing'],
        },
        { type: "NotificationBroadcast", subject: "goal-rejected", audienceDomains: ["backend", "ops"] },
      ]);
  });

  it("rejects tasks routed to an unknown domain or to a specialization no worker has as UNKNOWN_DOMAIN", () => {
    spec(president)
      .when(submitGoal({ tasks: [task("a", "ops", null), task("b", "backend", "react")] }))
      .then([
        {
          type: "GoalRejected",
          code: "UNKNOWN_DOMAIN",
          reasons: [
            'task "a": domain "ops" has no governor in aamas',
            'task "b": no worker of backend has specialization "react"',
          ],
        },
        { type: "NotificationBroadcast", subject: "goal-rejected", audienceDomains: ["backend", "ops"] },
      ]);
  });

  it("does not decide for a top it does not host", () => {
    spec(president, context({ hosts: () => false }))
      .when(submitGoal({ tasks: DAG }))
      .thenNothing();
  });
});

describe("president: release and completion", () => {
  it("a TaskCompleted releases exactly the dependents whose dependencies all completed", () => {
    const given = acceptedGoal();
    // api done: db is ready (needs only api), e2e still waits for ui.
    const released = spec(president)
      .given(given)
      .when(completed("g1", "api", "w"))
      .then([{ type: "TaskAssigned", taskId: "db", assigneeId: GOV.backend, attempt: 1 }]);
    // then ui done: e2e is ready; db is not released twice.
    spec(president)
      .given([...given, completed("g1", "api", "w"), ...released])
      .when(completed("g1", "ui", "w"))
      .then([{ type: "TaskAssigned", taskId: "e2e", assigneeId: GOV.testing }]);
  });

  it(`snapshots a running goal every ${SNAPSHOT_EVERY_COMPLETIONS} completions, once each, counted from the log`, () => {
    const many = Array.from({ length: 2 * SNAPSHOT_EVERY_COMPLETIONS + 5 }, (_, i) => task(`t${i}`, "backend", "api"));
    const steps: Given[] = [...acceptedGoal({ tasks: many })];
    const finish = (i: number) => {
      const out = spec(president)
        .given(steps)
        .when(completed("g1", `t${i}`, "w"));
      steps.push(completed("g1", `t${i}`, "w"), ...out.decisions);
      return out;
    };
    for (let i = 0; i < SNAPSHOT_EVERY_COMPLETIONS - 1; i++) finish(i).thenNothing();
    finish(SNAPSHOT_EVERY_COMPLETIONS - 1).then([
      {
        type: "GoalSnapshotTaken",
        goalId: "g1",
        status: "RUNNING",
        tasksCompleted: SNAPSHOT_EVERY_COMPLETIONS,
        tasksTotal: many.length,
      },
    ]);
    // The same completion decided again (a restart re-deciding its tail) takes no second snapshot.
    spec(president)
      .given(steps)
      .when(completed("g1", `t${SNAPSHOT_EVERY_COMPLETIONS - 1}`, "w"))
      .thenNothing();
    finish(SNAPSHOT_EVERY_COMPLETIONS).thenNothing();
    for (let i = SNAPSHOT_EVERY_COMPLETIONS + 1; i < 2 * SNAPSHOT_EVERY_COMPLETIONS - 1; i++) finish(i).thenNothing();
    finish(2 * SNAPSHOT_EVERY_COMPLETIONS - 1).then([
      { type: "GoalSnapshotTaken", tasksCompleted: 2 * SNAPSHOT_EVERY_COMPLETIONS },
    ]);
  });

  it("releases nothing while a dependency is still open", () => {
    spec(president)
      .given(acceptedGoal())
      .when(completed("g1", "ui", "w"))
      .thenNothing();
  });

  it("completes the goal on its last TaskCompleted, with every task's result and outputs and the summed cost", () => {
    const given = acceptedGoal();
    const steps: Given[] = [...given];
    const finish = (taskId: string, cost: string, outputs: Record<string, string> = {}) => {
      const out = spec(president)
        .given(steps)
        .when(completed("g1", taskId, "w", { cost, outputs, result: `result of ${taskId}` }));
      steps.push(completed("g1", taskId, "w", { cost, outputs, result: `result of ${taskId}` }), ...out.decisions);
      return out;
    };
    finish("api", "1.2500", { url: "http://api" });
    finish("ui", "0.5000");
    finish("db", "0.0001", { schema: "v1" });
    finish("e2e", "2.0000").then([
      {
        type: "GoalCompleted",
        goalId: "g1",
        tasksCompleted: 4,
        totalCost: "3.7501",
        outputs: {
          api: "result of api",
          "api.url": "http://api",
          db: "result of db",
          "db.schema": "v1",
          ui: "result of ui",
          e2e: "result of e2e",
        },
        result: "4 task(s) completed: api: result of api; db: result of db; ui: result of ui; e2e: result of e2e",
      },
      { type: "GoalSnapshotTaken", goalId: "g1", status: "COMPLETED", tasksCompleted: 4, tasksTotal: 4, progress: 1 },
      // The outcome, announced to every tier of the hierarchy in the domains the goal reached.
      {
        type: "NotificationBroadcast",
        notificationId: "goal-completed-g1",
        subject: "goal-completed",
        message: 'Goal "Build the shop" (g1) completed: 4 task(s) completed in 0 ms, cost 3.7501',
        severity: "INFO",
        audienceTiers: ["PRESIDENT", "GOVERNOR", "MAYOR", "WORKER"],
        audienceDomains: ["backend", "frontend", "testing"],
        goalId: "g1",
        expiresAt: null,
        data: { goalId: "g1", outcome: "COMPLETED", tasksCompleted: "4", durationMs: "0", totalCost: "3.7501" },
      },
    ]);
    // A repeat of the last completion after GoalCompleted is folded changes nothing.
    spec(president)
      .given(steps)
      .when(completed("g1", "e2e", "w"))
      .thenNothing();
  });
});

describe("president: projects", () => {
  it("starts a project in INITIATION with that phase's tasks", () => {
    spec(president)
      .when(submitGoal({ kind: "PROJECT", domainHints: ["backend"] }))
      .then([
        { type: "GoalSubmitted", kind: "PROJECT" },
        { type: "GoalValidated" },
        { type: "PhaseTransitioned", fromPhase: null, toPhase: "INITIATION", requestId: null },
        { type: "GoalSnapshotTaken", status: "VALIDATED", currentPhase: "INITIATION", tasksTotal: 0 },
        { type: "GoalDecomposed", phase: "INITIATION" },
        { type: "TaskCreated", priority: 5 },
        { type: "TaskCreated", priority: 5 },
        { type: "TaskAssigned", taskId: "initiation-backend-api", assigneeId: GOV.backend },
      ]);
  });

  it("with the automatic gate, completing a phase's last task moves the project to the next phase", () => {
    const given = spec(president).when(submitGoal({ kind: "PROJECT", domainHints: ["backend"] })).decisions;
    const history = [...given, completed("g1", "initiation-backend-api", "w")];
    spec(president)
      .given(history)
      .when(completed("g1", "initiation-backend-database", "w"))
      .then([
        { type: "PhaseTransitioned", fromPhase: "INITIATION", toPhase: "FEASIBILITY", requestId: null },
        { type: "GoalSnapshotTaken", currentPhase: "FEASIBILITY", tasksTotal: 2, tasksCompleted: 2, progress: 1 },
        { type: "GoalDecomposed", phase: "FEASIBILITY" },
        { type: "TaskCreated" },
        { type: "TaskCreated" },
        { type: "TaskAssigned", taskId: "feasibility-backend-api" },
      ]);
  });

  it("passes phases without tasks at once and completes the project when LAUNCH is done", () => {
    const tasks = [
      task("charter", "backend", "api", [], { phase: "INITIATION" }),
      task("golive", "frontend", "react", [], { phase: "LAUNCH" }),
    ];
    const submitted = spec(president).when(submitGoal({ kind: "PROJECT", tasks })).decisions;
    assert.deepStrictEqual(
      ofType(submitted, "TaskAssigned").map((t) => t.taskId),
      ["charter"],
    );
    const toLaunch = spec(president)
      .given(submitted)
      .when(completed("g1", "charter", "w")).decisions;
    assert.deepStrictEqual(
      ofType(toLaunch, "PhaseTransitioned").map((p) => `${p.fromPhase}>${p.toPhase}`),
      [
        "INITIATION>FEASIBILITY",
        "FEASIBILITY>REQUIREMENTS",
        "REQUIREMENTS>DESIGN",
        "DESIGN>DEVELOPMENT",
        "DEVELOPMENT>QA",
        "QA>DEPLOYMENT",
        "DEPLOYMENT>LAUNCH",
      ],
    );
    assert.deepStrictEqual(
      ofType(toLaunch, "TaskAssigned").map((t) => [t.taskId, t.assigneeId]),
      [["golive", GOV.frontend]],
    );
    // Goal versions keep counting up across the chain.
    const versions = toLaunch.filter((d) => d.aggregate.type === "GOAL").map((d) => d.aggregate.version);
    assert.deepStrictEqual(
      versions,
      versions.map((_, i) => versions[0]! + i),
    );
    spec(president)
      .given([...submitted, completed("g1", "charter", "w"), ...toLaunch])
      .when(completed("g1", "golive", "w", { result: "live" }))
      .then([
        {
          type: "GoalCompleted",
          tasksCompleted: 2,
          result: "2 task(s) completed across 8 phases: charter: done charter; golive: live",
        },
        { type: "GoalSnapshotTaken", status: "COMPLETED", currentPhase: "LAUNCH", tasksCompleted: 2 },
        {
          type: "NotificationBroadcast",
          subject: "goal-completed",
          message: 'Goal "Build the shop" (g1) completed: 2 task(s) completed across 8 phases in 0 ms, cost 0.0000',
          audienceDomains: ["backend", "frontend"],
        },
      ]);
  });
  it("completes a project at once when its only tasks are in INITIATION, counting every phase", () => {
    const tasks = [task("charter", "backend", "api", [], { phase: "INITIATION" })];
    const submitted = spec(president).when(submitGoal({ kind: "PROJECT", tasks })).decisions;
    const decisions = spec(president)
      .given(submitted)
      .when(completed("g1", "charter", "w")).decisions;
    assert.equal(ofType(decisions, "PhaseTransitioned").length, 7);
    assert.deepStrictEqual(ofType(decisions, "GoalCompleted"), [
      {
        goalId: "g1",
        result: "1 task(s) completed across 8 phases: charter: done charter",
        outputs: { charter: "done charter" },
        tasksCompleted: 1,
        durationMs: 0,
        totalCost: "0.0000",
      },
    ]);
    assert.deepStrictEqual(
      decisions.slice(-3).map((d) => d.type),
      ["GoalCompleted", "GoalSnapshotTaken", "NotificationBroadcast"],
    );
  });
});

describe("president: manual phase gate", () => {
  const tasks = [
    task("charter", "backend", "api", [], { phase: "INITIATION" }),
    task("scope", "frontend", "react", [], { phase: "INITIATION" }),
    task("study", "backend", "api", [], { phase: "FEASIBILITY" }),
    task("golive", "frontend", "react", [], { phase: "LAUNCH" }),
  ];
  const manual = () =>
    spec(president).when(submitGoal({ kind: "PROJECT", tasks, constraints: { phaseGate: "manual" } })).decisions;

  it("rejects a transition while tasks of the phase are pending, naming them", () => {
    spec(president)
      .given([...manual(), completed("g1", "charter", "w")])
      .when(requestPhase("g1", "INITIATION", "FEASIBILITY"))
      .then([
        {
          type: "PhaseTransitionRejected",
          currentPhase: "INITIATION",
          toPhase: "FEASIBILITY",
          pendingTaskIds: ["scope"],
          openEscalationIds: [],
          reasons: ["1 task(s) of INITIATION are not done: scope"],
        },
      ]);
  });

  it("rejects skipping a phase", () => {
    spec(president)
      .given(manual())
      .when(requestPhase("g1", "INITIATION", "DESIGN"))
      .then([
        {
          type: "PhaseTransitionRejected",
          pendingTaskIds: [],
          reasons: ["phases run in order: after INITIATION comes FEASIBILITY, not DESIGN"],
        },
      ]);
  });

  it("rejects a request naming the wrong current phase", () => {
    spec(president)
      .given(manual())
      .when(requestPhase("g1", "DESIGN", "DEVELOPMENT"))
      .then([{ type: "PhaseTransitionRejected", reasons: ["the project is in INITIATION, not DESIGN"] }]);
  });

  it("rejects a phase request for a plain goal and for an unknown goal", () => {
    spec(president)
      .given(acceptedGoal())
      .when(requestPhase("g1", "INITIATION", "FEASIBILITY"))
      .then([{ type: "PhaseTransitionRejected", reasons: ['"g1" is a plain goal: only projects have phases'] }]);
    spec(president)
      .when(requestPhase("nope", "INITIATION", "FEASIBILITY"))
      .then([{ type: "PhaseTransitionRejected", goalId: "nope", reasons: ['no project with id "nope"'] }]);
  });

  it("answers an unknown goal's phase request only once", () => {
    const request = requestPhase("nope", "INITIATION", "FEASIBILITY");
    const first = spec(president).when(request).decisions;
    assert.equal(first.length, 1);
    spec(president).given(first).when(request).thenNothing();
  });

  it("waits at the gate when the phase is done, and moves on when asked", () => {
    const done = [...manual(), completed("g1", "charter", "w")];
    spec(president)
      .given(done)
      .when(completed("g1", "scope", "w"))
      .thenNothing();
    const request = requestPhase("g1", "INITIATION", "FEASIBILITY");
    const moved = spec(president)
      .given([...done, completed("g1", "scope", "w")])
      .when(request)
      .then([
        {
          type: "PhaseTransitioned",
          fromPhase: "INITIATION",
          toPhase: "FEASIBILITY",
          requestId: (request.value as { envelope: { eventId: string } }).envelope.eventId,
        },
        { type: "GoalSnapshotTaken", currentPhase: "FEASIBILITY" },
        { type: "GoalDecomposed", phase: "FEASIBILITY", tasks: [tasks[2]!] },
        { type: "TaskCreated", task: tasks[2]! },
        { type: "TaskAssigned", taskId: "study" },
      ]);
    // The same request again, once answered, yields nothing.
    spec(president)
      .given([...done, completed("g1", "scope", "w"), ...moved])
      .when(request)
      .thenNothing();
  });

  it("completes the project when LAUNCH's tasks are done, without waiting for a request", () => {
    const history: Given[] = [...manual(), completed("g1", "charter", "w"), completed("g1", "scope", "w")];
    const walk = (from: Parameters<typeof requestPhase>[1], to: Parameters<typeof requestPhase>[2]) =>
      history.push(
        ...spec(president)
          .given(history)
          .when(requestPhase("g1", from, to)).decisions,
      );
    walk("INITIATION", "FEASIBILITY");
    history.push(completed("g1", "study", "w"));
    walk("FEASIBILITY", "REQUIREMENTS");
    walk("REQUIREMENTS", "DESIGN");
    walk("DESIGN", "DEVELOPMENT");
    walk("DEVELOPMENT", "QA");
    walk("QA", "DEPLOYMENT");
    walk("DEPLOYMENT", "LAUNCH");
    assert.deepStrictEqual(
      ofType(history as never, "PhaseTransitioned").map((p) => p.toPhase),
      ["INITIATION", "FEASIBILITY", "REQUIREMENTS", "DESIGN", "DEVELOPMENT", "QA", "DEPLOYMENT", "LAUNCH"],
    );
    spec(president)
      .given(history)
      .when(requestPhase("g1", "LAUNCH", "LAUNCH"))
      .then([
        {
          type: "PhaseTransitionRejected",
          reasons: ["LAUNCH is the last phase: the project completes when its tasks are done"],
        },
      ]);
    spec(president)
      .given(history)
      .when(completed("g1", "golive", "w"))
      .then([
        { type: "GoalCompleted", tasksCompleted: 4 },
        { type: "GoalSnapshotTaken", status: "COMPLETED" },
        { type: "NotificationBroadcast", subject: "goal-completed", goalId: "g1" },
      ]);
  });

  it("completes a project whose LAUNCH phase has no tasks as soon as it enters it", () => {
    const early = [task("charter", "backend", "api", [], { phase: "INITIATION" })];
    const history: Given[] = [
      ...spec(president).when(submitGoal({ kind: "PROJECT", tasks: early, constraints: { phaseGate: "manual" } }))
        .decisions,
      completed("g1", "charter", "w"),
    ];
    const phases = ["INITIATION", "FEASIBILITY", "REQUIREMENTS", "DESIGN", "DEVELOPMENT", "QA", "DEPLOYMENT"] as const;
    for (let i = 0; i < phases.length - 1; i++)
      history.push(
        ...spec(president)
          .given(history)
          .when(requestPhase("g1", phases[i]!, phases[i + 1]!)).decisions,
      );
    spec(president)
      .given(history)
      .when(requestPhase("g1", "DEPLOYMENT", "LAUNCH"))
      .then([
        { type: "PhaseTransitioned", toPhase: "LAUNCH" },
        { type: "GoalSnapshotTaken", currentPhase: "LAUNCH" },
        { type: "GoalDecomposed", phase: "LAUNCH", tasks: [] },
        { type: "GoalCompleted", tasksCompleted: 1 },
        { type: "GoalSnapshotTaken", status: "COMPLETED" },
        { type: "NotificationBroadcast", subject: "goal-completed", goalId: "g1" },
      ]);
  });
});

describe("president: escalations", () => {
  it("an escalation that reaches the top fails the goal, cancels its open tasks and resolves the escalation", () => {
    const history: Given[] = [
      ...acceptedGoal(),
      completed("g1", "api", "w", { cost: "1.0000" }),
      failed("g1", "ui", "aamas-worker-frontend-react-1", { retryable: false }),
    ];
    const raised = escalation({
      escalationId: "esc-ui>gov",
      goalId: "g1",
      taskId: "ui",
      toAgentId: "aamas-president",
      toTier: "PRESIDENT",
      fromAgentId: GOV.frontend,
      reason: "Governor of frontend cannot settle it",
      reasonChain: ["task ui failed"],
    });
    const decisions = spec(president)
      .given(history)
      .when(raised)
      .then([
        {
          type: "GoalFailed",
          goalId: "g1",
          reason:
            "task ui failed -> Governor of frontend cannot settle it -> President: no policy allows another attempt: the goal fails and its open tasks are cancelled",
          failedTaskIds: ["ui"],
          escalationId: "esc-ui>gov",
          tasksCompleted: 1,
          tasksFailed: 1,
          totalCost: "1.0000",
        },
        { type: "TaskCancelled", taskId: "db", cause: "GOAL_FAILED", previousStatus: "PENDING" },
        { type: "TaskCancelled", taskId: "ui", cause: "GOAL_FAILED", previousStatus: "FAILED" },
        { type: "TaskCancelled", taskId: "e2e", cause: "GOAL_FAILED", previousStatus: "PENDING" },
        { type: "EscalationResolved", escalationId: "esc-ui>gov", outcome: "FAIL_GOAL", taskId: "ui" },
        // Announced last, after every fact it sums up.
        {
          type: "NotificationBroadcast",
          notificationId: "goal-failed-g1",
          subject: "goal-failed",
          severity: "CRITICAL",
          message:
            'Goal "Build the shop" (g1) failed: task ui failed -> Governor of frontend cannot settle it -> President: no policy allows another attempt: the goal fails and its open tasks are cancelled',
          data: { goalId: "g1", outcome: "FAILED", escalationId: "esc-ui>gov", failedTaskIds: "ui" },
        },
      ]);
    // Decided again once its answer is folded: nothing more.
    spec(president)
      .given([...history, raised, ...decisions])
      .when(raised)
      .thenNothing();
  });

  it("leaves an escalation addressed to a governor alone", () => {
    spec(president)
      .given(acceptedGoal())
      .when(escalation({ goalId: "g1", taskId: "ui", toAgentId: GOV.frontend }))
      .thenNothing();
  });

  it("only resolves a second escalation of a goal that already failed", () => {
    const first = escalation({ escalationId: "e1", goalId: "g1", taskId: "ui", toAgentId: "aamas-president" });
    const history = [...acceptedGoal(), first, ...spec(president).given(acceptedGoal()).when(first).decisions];
    spec(president)
      .given(history)
      .when(escalation({ escalationId: "e2", goalId: "g1", taskId: "api", toAgentId: "aamas-president" }))
      .then([{ type: "EscalationResolved", escalationId: "e2", outcome: "FAIL_GOAL" }]);
  });

  it("ignores a completion after the goal failed", () => {
    const first = escalation({ goalId: "g1", taskId: "ui", toAgentId: "aamas-president" });
    const history = [...acceptedGoal(), first, ...spec(president).given(acceptedGoal()).when(first).decisions];
    spec(president)
      .given(history)
      .when(completed("g1", "api", "w"))
      .thenNothing();
  });
});
