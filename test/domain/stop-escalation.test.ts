/**
 * Governance and resilience, decider by decider: the emergency stop (StopGoal) and escalation
 * through the tiers under the configured retry limits, with the reason chain the top reports.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Topology } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { governor } from "../../processors/domain/governor.js";
import { DEFAULT_RETRY_LIMITS } from "../../processors/domain/limits.js";
import { mayor } from "../../processors/domain/mayor.js";
import { president } from "../../processors/domain/president.js";
import { worker } from "../../processors/domain/worker.js";
import { retryLimitsOf, topologyProblems } from "../../processors/topology.js";
import {
  assigned,
  completed,
  context,
  created,
  escalation,
  ev,
  failed,
  ofType,
  retried,
  spec,
  started,
  submitGoal,
  task,
  TEST_TOPOLOGY,
  type Given,
} from "../support/decider-spec.js";
import { entries, ok, runHierarchy, type Attempt } from "../support/hierarchy-run.js";

/** api and ui are roots; db needs api; e2e needs api and ui. */
const DAG = [
  task("api", "backend", "api"),
  task("db", "backend", "database", ["api"]),
  task("ui", "frontend", "react"),
  task("e2e", "testing", "e2e-test", ["api", "ui"]),
];

const GOV = "aamas-governor-backend";
const M1 = "aamas-mayor-backend-1"; // api-1 and database-1
const M2 = "aamas-mayor-backend-2"; // api-2
const API1 = "aamas-worker-backend-api-1";
const API2 = "aamas-worker-backend-api-2";
const API = DAG[0]!;

/** The facts of an accepted goal, as the president's own decisions. */
function acceptedGoal(overrides: Parameters<typeof submitGoal>[0] = {}): Given[] {
  return spec(president).when(submitGoal({ tasks: DAG, ...overrides })).decisions;
}

function stopGoal(goalId = "g1", reason = "runaway costs", by = "operator-1"): PolityEvent {
  return ev("StopGoal", { goalId, reason }, { actor: { id: by, tier: "USER" } });
}

/** api is with api-1 (under mayor 1), running; ui completed. */
function runningGoal(): Given[] {
  return [
    ...acceptedGoal(),
    assigned("g1", API, M1),
    assigned("g1", API, API1),
    started("g1", "api", API1),
    completed("g1", "ui", "aamas-worker-frontend-react-1"),
  ];
}

describe("emergency stop: the president", () => {
  it("stops a running goal: GoalStopped, then one TaskCancelled per open task, none for a completed one", () => {
    const decisions = spec(president)
      .given(runningGoal())
      .when(stopGoal())
      .then([
        {
          type: "GoalStopped",
          goalId: "g1",
          reason: "runaway costs",
          requestedBy: "operator-1",
          cancelledTaskIds: ["api", "db", "e2e"],
        },
        {
          type: "TaskCancelled",
          taskId: "api",
          cause: "GOAL_STOPPED",
          previousStatus: "RUNNING",
          agentId: API1,
          reason: "emergency stop by operator-1: runaway costs",
        },
        { type: "TaskCancelled", taskId: "db", cause: "GOAL_STOPPED", previousStatus: "PENDING", agentId: null },
        { type: "TaskCancelled", taskId: "e2e", cause: "GOAL_STOPPED", previousStatus: "PENDING", agentId: null },
        {
          type: "NotificationBroadcast",
          notificationId: "goal-stopped-g1",
          subject: "goal-stopped",
          severity: "WARNING",
          message:
            'Goal "Build the shop" (g1) stopped: emergency stop by operator-1: runaway costs; 3 open task(s) cancelled',
          audienceTiers: ["PRESIDENT", "GOVERNOR", "MAYOR", "WORKER"],
          audienceDomains: ["backend", "frontend", "testing"],
          goalId: "g1",
        },
      ]);
    assert.deepStrictEqual(decisions[0]!.actor, { id: "aamas-president", tier: "PRESIDENT" });
    assert.equal(decisions[0]!.aggregate.type, "GOAL");
  });

  it("answers a stop once: the same command decided again, or a second stop, yields nothing", () => {
    const command = stopGoal();
    const history = [...runningGoal(), command];
    const answer = spec(president).given(runningGoal()).when(command).decisions;
    spec(president)
      .given([...history, ...answer])
      .when(command)
      .thenNothing();
    spec(president)
      .given([...history, ...answer])
      .when(stopGoal("g1", "again", "operator-2"))
      .thenNothing();
  });

  it("does nothing for a goal that is already completed, failed or unknown", () => {
    const done: Given[] = [...acceptedGoal({ tasks: [API] }), assigned("g1", API, API1), started("g1", "api", API1)];
    const completion = completed("g1", "api", API1);
    const afterCompletion = [...done, completion, ...spec(president).given(done).when(completion).decisions];
    assert.ok(afterCompletion.some((g) => ("payload" in g ? g.type : g.type) === "GoalCompleted"));
    spec(president).given(afterCompletion).when(stopGoal()).thenNothing();

    const raised = escalation({ goalId: "g1", taskId: "api", toAgentId: "aamas-president", toTier: "PRESIDENT" });
    const afterFailure = [...acceptedGoal(), raised, ...spec(president).given(acceptedGoal()).when(raised).decisions];
    spec(president).given(afterFailure).when(stopGoal()).thenNothing();

    spec(president).given(acceptedGoal()).when(stopGoal("no-such-goal")).thenNothing();
  });

  it("cancels a task that failed and waits for its retry", () => {
    spec(president)
      .given([...runningGoal(), failed("g1", "api", API1)])
      .when(stopGoal())
      .then([
        { type: "GoalStopped", cancelledTaskIds: ["api", "db", "e2e"] },
        { type: "TaskCancelled", taskId: "api", previousStatus: "FAILED" },
        { type: "TaskCancelled", taskId: "db" },
        { type: "TaskCancelled", taskId: "e2e" },
        { type: "NotificationBroadcast", subject: "goal-stopped", goalId: "g1" },
      ]);
  });

  it("releases nothing more once stopped, even when a late completion arrives", () => {
    const answer = spec(president).given(runningGoal()).when(stopGoal()).decisions;
    // api's execution finished just before the worker heard of the stop: db depends on it.
    spec(president)
      .given([...runningGoal(), stopGoal(), ...answer])
      .when(completed("g1", "api", API1))
      .thenNothing();
  });
});

describe("emergency stop: the tiers below", () => {
  /** api at mayor 1, attempt 1 failed on api-1; the stop then cancels it. */
  const failedAtMayor = [
    created("g1", API),
    assigned("g1", API, GOV),
    assigned("g1", API, M1),
    assigned("g1", API, API1),
  ];
  const failure = failed("g1", "api", API1);
  const cancel = ev("TaskCancelled", {
    goalId: "g1",
    taskId: "api",
    cause: "GOAL_STOPPED",
    reason: "stop",
    previousStatus: "FAILED",
    agentId: API1,
  });

  it("stop during retries: the mayor does not retry a failed task once it is cancelled", () => {
    // The failure decided again after the cancel (a restart): no TaskRetried.
    spec(mayor)
      .given([...failedAtMayor, failure, cancel])
      .when(failure)
      .thenNothing();
    spec(mayor)
      .given([...failedAtMayor, failure])
      .when(cancel)
      .thenNothing();
  });

  it("stop during retries: a retry the mayor wrote before it read the cancel dispatches nothing", () => {
    spec(mayor)
      .given([...failedAtMayor, failure, cancel])
      .when(retried("g1", "api", 2, [API1]))
      .thenNothing();
    // Nor does a worker start the retry's assignment.
    spec(worker)
      .given([...failedAtMayor, failure, cancel, retried("g1", "api", 2, [API1])])
      .when(assigned("g1", API, API2, { attempt: 2 }))
      .thenNothing();
  });

  it("stop during retries: the sub-master (dgm) does not retry a cancelled task either", () => {
    const t = task("api", "backend", "api");
    const history = [
      created("g1", t),
      assigned("g1", t, "dgm-submaster-backend"),
      assigned("g1", t, "dgm-worker-backend-api-1"),
    ];
    const f = failed("g1", "api", "dgm-worker-backend-api-1");
    spec(governor)
      .given([...history, f, { ...cancel }])
      .when(f)
      .thenNothing();
  });

  it("nothing is dispatched for a stopped goal: governor, mayor, sub-master and worker ignore its assignments", () => {
    const cancelled = (id: string) =>
      ev("TaskCancelled", {
        goalId: "g1",
        taskId: id,
        cause: "GOAL_STOPPED",
        reason: "stop",
        previousStatus: "ASSIGNED",
        agentId: null,
      });
    // The president released api to the governor just before it stopped the goal.
    spec(governor)
      .given([created("g1", API), cancelled("api")])
      .when(assigned("g1", API, GOV))
      .thenNothing();
    // The governor handed it to a mayor before it read the cancel.
    spec(mayor)
      .given([created("g1", API), assigned("g1", API, GOV), cancelled("api")])
      .when(assigned("g1", API, M1))
      .thenNothing();
    spec(governor)
      .given([created("g1", API), cancelled("api")])
      .when(assigned("g1", API, "dgm-submaster-backend"))
      .thenNothing();
    spec(worker)
      .given([created("g1", API), assigned("g1", API, GOV), assigned("g1", API, M1), cancelled("api")])
      .when(assigned("g1", API, API1))
      .thenNothing();
  });

  it("the worker drops the result of an attempt cancelled while it ran", () => {
    spec(worker)
      .given([...failedAtMayor, started("g1", "api", API1), { ...cancel }])
      .when({
        type: "ExecutionFinished",
        goalId: "g1",
        taskId: "api",
        agentId: API1,
        attempt: 1,
        outcome: ok({ goalId: "g1", taskId: "api", agentId: API1, attempt: 1 }),
      })
      .thenNothing();
  });
});

describe("escalation limits", () => {
  const limits = (worker: number, domain: number) => context({ retryLimits: () => ({ worker, domain }) });

  it("are 5 attempts per delivery and 3 deliveries unless configured, and validated", () => {
    assert.deepStrictEqual(DEFAULT_RETRY_LIMITS, { worker: 5, domain: 3 });
    assert.deepStrictEqual(retryLimitsOf(TEST_TOPOLOGY, "aamas"), { worker: 5, domain: 3 });
    const configured = {
      ...TEST_TOPOLOGY,
      topologies: { ...TEST_TOPOLOGY.topologies, dgm: { ...TEST_TOPOLOGY.topologies.dgm!, retries: { worker: 2 } } },
    };
    assert.deepStrictEqual(retryLimitsOf(configured, "dgm"), { worker: 2, domain: 3 });
    assert.deepStrictEqual(topologyProblems(configured), []);
    const bad = {
      ...TEST_TOPOLOGY,
      topologies: {
        aamas: { ...TEST_TOPOLOGY.topologies.aamas!, retries: { worker: 0, domain: 1.5 } },
      },
    };
    assert.deepStrictEqual(topologyProblems(bad), [
      "topologies.aamas.retries.worker must be a whole number >= 1",
      "topologies.aamas.retries.domain must be a whole number >= 1",
    ]);
  });

  it("the president creates tasks with the topology's worker limit", () => {
    const created = ofType(spec(president, limits(7, 2)).when(submitGoal({ tasks: [API] })).decisions, "TaskCreated");
    assert.deepStrictEqual(
      created.map((c) => c.maxAttempts),
      [7],
    );
  });

  /** api delivered to mayor 1 with maxAttempts `max`; attempts `from`..`to` fail on alternating workers. */
  function failures(max: number, to: number, from = 1, start: Given[] = []) {
    const history: Given[] = start.length
      ? start
      : [created("g1", API, { maxAttempts: max }), assigned("g1", API, GOV), assigned("g1", API, M1)];
    let last!: PolityEvent;
    for (let attempt = from; attempt <= to; attempt++) {
      const w = attempt % 2 === 1 ? API1 : API2;
      if (attempt > from) history.push(last, retried("g1", "api", attempt, [API1]));
      history.push(assigned("g1", API, w, { attempt }));
      last = failed("g1", "api", w, { attempt, reason: `crash ${attempt}` });
    }
    return { history, last };
  }

  it("worker limit 5: the mayor retries four times, and escalates when the fifth attempt fails", () => {
    for (let n = 1; n <= 4; n++) {
      const { history, last } = failures(5, n);
      spec(mayor, limits(5, 3))
        .given(history)
        .when(last)
        .then([{ type: "TaskRetried", attempt: n + 1, maxAttempts: 5 }]);
    }
    const { history, last } = failures(5, 5);
    spec(mayor, limits(5, 3))
      .given(history)
      .when(last)
      .then([
        {
          type: "EscalationRaised",
          kind: "RETRIES_EXHAUSTED",
          fromAgentId: M1,
          toAgentId: GOV,
          reason: "Mayor 1 of backend escalates: task api failed 5 of 5 attempts",
          reasonChain: [1, 2, 3, 4, 5].map((a) => `attempt ${a} on ${a % 2 === 1 ? API1 : API2} failed: crash ${a}`),
        },
      ]);
  });

  it("the governor delivers the task again in its domain, to another mayor, while deliveries remain", () => {
    const { history, last } = failures(5, 5);
    const [raised] = spec(mayor, limits(5, 3)).given(history).when(last).decisions;
    const upTo = [...history, last, raised!];
    const [redelivery, reassigned] = spec(governor, limits(5, 3))
      .given([...history, last])
      .when(asInput(raised!))
      .then([
        {
          type: "EscalationResolved",
          escalationId: `esc-g1-api-5-${M1}`,
          outcome: "REASSIGN",
          reassignedTo: M2,
          decision:
            "delivery 2 of 3 in backend: Governor of backend dispatches the task again to Mayor 2 of backend as attempt 6",
        },
        { type: "TaskAssigned", assigneeId: M2, assigneeTier: "MAYOR", assignedBy: GOV, attempt: 6 },
      ]);
    // Mayor 2 hands attempt 6 to its worker; mayor 1 holds nothing any more.
    const outcome = spec(mayor, limits(5, 3))
      .given([...upTo, redelivery!])
      .when(asInput(reassigned!));
    outcome.then([{ type: "TaskAssigned", assigneeId: API2, assigneeTier: "WORKER", attempt: 6 }]);
    assert.equal(outcome.state.activeByAgent.get(M1), undefined, "mayor 1 let go of the task");
    // The same escalation decided again once answered: nothing.
    spec(governor, limits(5, 3))
      .given([...upTo, redelivery!, reassigned!])
      .when(asInput(raised!))
      .thenNothing();
  });

  it("after the last delivery the governor passes the escalation to the top, and the top fails the goal with the chain", () => {
    // Limits 2 and 2: delivery 2 (attempts 3-4, given to mayor 2 by the governor) fails too.
    const start: Given[] = [
      ...spec(president, limits(2, 2)).when(submitGoal({ tasks: [API] })).decisions,
      assigned("g1", API, M2, { attempt: 3 }),
    ];
    const { history: h, last } = failures(2, 4, 3, start);
    const [mayorEscalation] = spec(mayor, limits(2, 2))
      .given(h)
      .when(last)
      .then([
        {
          type: "EscalationRaised",
          fromAgentId: M2,
          reason: "Mayor 2 of backend escalates: task api failed 2 of 2 attempts of delivery 2 (4 attempts in all)",
          reasonChain: [`attempt 3 on ${API1} failed: crash 3`, `attempt 4 on ${API2} failed: crash 4`],
        },
      ]);
    const [governorEscalation] = spec(governor, limits(2, 2))
      .given([...h, last])
      .when(asInput(mayorEscalation!))
      .then([
        {
          type: "EscalationRaised",
          fromAgentId: GOV,
          toAgentId: "aamas-president",
          previousEscalationId: `esc-g1-api-4-${M2}`,
          reason: "Governor of backend cannot settle it: 2 of 2 deliveries in backend failed",
        },
        { type: "EscalationResolved", outcome: "ESCALATED_FURTHER" },
      ]);
    const failedGoal = spec(president, limits(2, 2))
      .given([...h, last, mayorEscalation!])
      .when(asInput(governorEscalation!))
      .then([
        { type: "GoalFailed", failedTaskIds: ["api"] },
        { type: "TaskCancelled", taskId: "api", cause: "GOAL_FAILED" },
        { type: "EscalationResolved", outcome: "FAIL_GOAL" },
        { type: "NotificationBroadcast", subject: "goal-failed", goalId: "g1" },
      ]);
    assert.equal(
      ofType(failedGoal, "GoalFailed")[0]!.reason,
      [
        `attempt 3 on ${API1} failed: crash 3`,
        `attempt 4 on ${API2} failed: crash 4`,
        "Mayor 2 of backend escalates: task api failed 2 of 2 attempts of delivery 2 (4 attempts in all)",
        "Governor of backend cannot settle it: 2 of 2 deliveries in backend failed",
        "President: no policy allows another attempt: the goal fails and its open tasks are cancelled",
      ].join(" -> "),
    );
  });

  it("passes a failure that cannot be retried to the top at once, without another delivery", () => {
    const { history } = failures(5, 1);
    const last = failed("g1", "api", API1, { retryable: false, reason: "bad input" });
    const [raised] = spec(mayor, limits(5, 3)).given(history).when(last).decisions;
    spec(governor, limits(5, 3))
      .given([...history, last])
      .when(asInput(raised!))
      .then([
        { type: "EscalationRaised", reason: "Governor of backend cannot settle it: the failure cannot be retried" },
        { type: "EscalationResolved", outcome: "ESCALATED_FURTHER" },
      ]);
  });

  for (const topology of ["aamas", "dgm"] as Topology[]) {
    it(`a worker that always fails: ${topology} escalates to the top after worker x domain attempts, with a readable chain`, () => {
      const down = (a: Attempt) =>
        a.taskId === "be-api"
          ? ({
              ok: false,
              reason: `api down (${a.attempt})`,
              kind: "EXECUTION_ERROR",
              retryable: true,
              durationMs: 1,
              exitCode: null,
              output: null,
            } as const)
          : ok(a);
      const tasks = [task("be-api", "backend", "api"), task("fe-ui", "frontend", "react")];
      const { log } = runHierarchy({ commands: [submitGoal({ topology, tasks })], outcome: down });
      const failures = entries(log, "TaskFailed").filter((f) => f.value.taskId === "be-api");
      assert.equal(failures.length, 15, "5 attempts in each of 3 deliveries");
      const raised = entries(log, "EscalationRaised").map((e) => e.value);
      const resolved = entries(log, "EscalationResolved").map((e) => e.value);
      // Every escalation is closed exactly once.
      assert.deepStrictEqual(resolved.map((r) => r.escalationId).sort(), raised.map((r) => r.escalationId).sort());
      const goalFailed = entries(log, "GoalFailed");
      assert.equal(goalFailed.length, 1);
      const chain = goalFailed[0]!.value.reason.split(" -> ");
      const workers = chain.slice(0, 5);
      for (const [i, w] of workers.entries())
        assert.match(
          w,
          new RegExp(`^attempt ${11 + i} on ${topology}-worker-backend-api-\\d failed: api down \\(${11 + i}\\)$`),
        );
      const tiers = chain.slice(5).map((c) => c.replace(/^Mayor \d/, "Mayor N"));
      assert.deepStrictEqual(
        tiers,
        topology === "aamas"
          ? [
              "Mayor N of backend escalates: task be-api failed 5 of 5 attempts of delivery 3 (15 attempts in all)",
              "Governor of backend cannot settle it: 3 of 3 deliveries in backend failed",
              "President: no policy allows another attempt: the goal fails and its open tasks are cancelled",
            ]
          : [
              "Sub-master of backend escalates: task be-api failed 5 attempts in each of 3 deliveries (15 attempts)",
              "Master: no policy allows another attempt: the goal fails and its open tasks are cancelled",
            ],
      );
    });
  }
});

/** A decision as the input its host would read back. */
function asInput(d: Given): PolityEvent {
  if (!("payload" in d)) return d;
  return ev(d.type, d.payload, { actor: d.actor, aggregate: d.aggregate });
}
