/**
 * Time limits, decider by decider (processors/domain/time-limits.ts): a task attempt that runs past
 * its limit is timed out by its dispatcher and then retried or escalated like a failure; a goal's
 * deadline is watched by the top (at risk once, then the configured outcome). Time comes in as a
 * ClockTicked input, never from a clock in the decider.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ClockTicked } from "../../processors/domain/decider.js";
import { governor } from "../../processors/domain/governor.js";
import { mayor } from "../../processors/domain/mayor.js";
import { president } from "../../processors/domain/president.js";
import { DEFAULT_DEADLINES, type TimeLimits } from "../../processors/domain/time-limits.js";
import { runningOn, worker } from "../../processors/domain/worker.js";
import { timeLimitsOf, topologyProblems } from "../../processors/topology.js";
import {
  NOW,
  TEST_TOPOLOGY,
  asEvent,
  assigned,
  completed,
  context,
  created,
  executionFinished,
  ofType,
  spec,
  started,
  stateOf,
  submitGoal,
  task,
  type Given,
} from "../support/decider-spec.js";

const M1 = "aamas-mayor-backend-1";
const GOV = "aamas-governor-backend";
const API1 = "aamas-worker-backend-api-1";
const SUB = "dgm-submaster-backend";
const DGM_API1 = "dgm-worker-backend-api-1";

const at = (ms: number) => new Date(NOW.getTime() + ms);
const tick = (ms: number): ClockTicked => ({ type: "ClockTicked", now: at(ms) });
/** Worker groups with a limit of their own (backend api: 2 s), as the topology's `timeoutMs` would set. */
const limits = (deadlines = DEFAULT_DEADLINES): TimeLimits => ({
  groupTimeoutMs: (domain, specialization) => (domain === "backend" && specialization === "api" ? 2_000 : null),
  deadlines,
});

const LIMITED = task("api", "backend", "api", [], { timeoutMs: 1_000 });

/** The task handed down to API1 (attempt 1, a 1 s limit, assigned at NOW) and started there. */
const runningAtWorker = (maxAttempts = 3): Given[] => [
  created("g1", LIMITED, { maxAttempts }),
  assigned("g1", LIMITED, GOV),
  assigned("g1", LIMITED, M1),
  assigned("g1", LIMITED, API1, { assignedBy: M1, timeoutMs: 1_000 }),
  started("g1", "api", API1),
];

describe("time limits: the dispatcher writes the limit into the assignment", () => {
  it("the task's own timeoutMs wins over its worker group's", () => {
    const facts = [created("g1", LIMITED), assigned("g1", LIMITED, GOV), assigned("g1", LIMITED, M1)];
    spec(mayor, context({ timeLimits: () => limits() }))
      .given(facts.slice(0, -1))
      .when(facts.at(-1)!)
      .then([{ type: "TaskAssigned", assigneeId: API1, assigneeTier: "WORKER", timeoutMs: 1_000 }]);
  });

  it("a task without one gets its worker group's, and none when the group has none either", () => {
    const plain = task("api", "backend", "api");
    const facts = [created("g1", plain), assigned("g1", plain, GOV), assigned("g1", plain, M1)];
    spec(mayor, context({ timeLimits: () => limits() }))
      .given(facts.slice(0, -1))
      .when(facts.at(-1)!)
      .then([{ type: "TaskAssigned", assigneeId: API1, timeoutMs: 2_000 }]);
    spec(mayor)
      .given(facts.slice(0, -1))
      .when(facts.at(-1)!)
      .then([{ type: "TaskAssigned", assigneeId: API1, timeoutMs: null }]);
  });

  it("the topology file's worker group timeoutMs is what the hosts hand the deciders", () => {
    const config = structuredClone(TEST_TOPOLOGY);
    config.topologies.aamas!.domains.backend!.workers.api!.timeoutMs = 2_000;
    const aamas = timeLimitsOf(config, "aamas");
    assert.equal(aamas.groupTimeoutMs("backend", "api"), 2_000);
    assert.equal(aamas.groupTimeoutMs("backend", "database"), null);
    assert.equal(timeLimitsOf(config, "dgm").groupTimeoutMs("backend", "api"), null);
    assert.deepStrictEqual(aamas.deadlines, { atRiskFraction: 0.8, onMiss: "fail" });
  });
});

describe("time limits: task timeouts", () => {
  it("an attempt that ran past its limit is timed out by its mayor", () => {
    spec(mayor)
      .given(runningAtWorker())
      .when(tick(1_001))
      .then([
        {
          type: "TaskTimedOut",
          goalId: "g1",
          taskId: "api",
          agentId: API1,
          attempt: 1,
          timeoutMs: 1_000,
          elapsedMs: 1_001,
        },
      ]);
  });

  it("no timeout before the limit", () => {
    spec(mayor).given(runningAtWorker()).when(tick(500)).thenNothing();
    spec(mayor).given(runningAtWorker()).when(tick(1_000)).thenNothing();
  });

  it("an attempt without a limit is never timed out", () => {
    const plain = task("api", "backend", "api");
    const facts = [
      created("g1", plain),
      assigned("g1", plain, GOV),
      assigned("g1", plain, M1),
      assigned("g1", plain, API1),
      started("g1", "api", API1),
    ];
    const outcome = spec(mayor).given(facts).when(tick(3_600_000));
    outcome.thenNothing();
    // Nothing to watch: the host's clock skips such a partition altogether.
    assert.equal(outcome.state.timed.size, 0);
  });

  it("a repeated tick adds nothing: the TaskTimedOut is in the state", () => {
    const timedOut = spec(mayor).given(runningAtWorker()).when(tick(1_001)).decisions;
    spec(mayor)
      .given([...runningAtWorker(), ...timedOut])
      .when(tick(5_000))
      .thenNothing();
  });

  it("a completion before the tick wins", () => {
    spec(mayor)
      .given([...runningAtWorker(), completed("g1", "api", API1)])
      .when(tick(5_000))
      .thenNothing();
  });

  it("a timed-out attempt is no longer run; a success of it already in the log completes the task", () => {
    const timedOut = spec(mayor).given(runningAtWorker()).when(tick(1_001)).decisions;
    const over = stateOf([...runningAtWorker(), ...timedOut]);
    assert.equal(over.tasks.get("g1/api")!.status, "TIMED_OUT");
    // The worker no longer runs it (its host aborts the execution) and reports nothing for it.
    assert.deepStrictEqual(
      runningOn(over, () => true),
      [],
    );
    // But a worker that finished before it read the timeout has its success in the log after it:
    // the work is done, and every fold takes it, as that worker's own fold did (kernel/status.ts).
    const late = stateOf([...runningAtWorker(), ...timedOut, completed("g1", "api", API1)]);
    assert.equal(late.tasks.get("g1/api")!.status, "COMPLETED");
    const ok = { ok: true, result: "late", outputs: {}, durationMs: 5_000, cost: "0.0000", exitCode: 0 } as const;
    spec(worker)
      .given([...runningAtWorker(), ...timedOut])
      .when(executionFinished("g1", "api", API1, ok))
      .thenNothing();
  });

  it("timed out, then retried like a failed attempt", () => {
    const timedOut = spec(mayor).given(runningAtWorker()).when(tick(1_001)).decisions;
    spec(mayor)
      .given(runningAtWorker())
      .when(asEvent(timedOut[0]!))
      .then([
        {
          type: "TaskRetried",
          goalId: "g1",
          taskId: "api",
          attempt: 2,
          reason: `attempt 1 on ${API1} timed out after 1001 ms (limit 1000 ms)`,
          excludeAgentIds: [API1],
        },
      ]);
  });

  it("at the retry limit the mayor escalates with kind TIMEOUT, and the governor delivers again", () => {
    const facts = runningAtWorker(1);
    const timedOut = spec(mayor).given(facts).when(tick(1_001)).decisions;
    const [raised] = spec(mayor)
      .given(facts)
      .when(asEvent(timedOut[0]!))
      .then([
        {
          type: "EscalationRaised",
          kind: "TIMEOUT",
          fromAgentId: M1,
          toAgentId: GOV,
          reason: "Mayor 1 of backend escalates: task api failed 1 of 1 attempts, the last by timing out",
          reasonChain: [`attempt 1 on ${API1} failed: timed out after 1001 ms (limit 1000 ms)`],
        },
      ]);
    // The governor answers a TIMEOUT as it answers RETRIES_EXHAUSTED: another delivery in its domain.
    spec(governor)
      .given([...facts, ...timedOut])
      .when(asEvent(raised!))
      .then([
        { type: "EscalationResolved", outcome: "REASSIGN", reassignedTo: "aamas-mayor-backend-2" },
        { type: "TaskAssigned", assigneeTier: "MAYOR", assigneeId: "aamas-mayor-backend-2", attempt: 2 },
      ]);
  });

  it("dgm: the sub-master, which dispatches to workers, times out and retries", () => {
    const facts: Given[] = [
      created("g1", LIMITED),
      assigned("g1", LIMITED, SUB),
      assigned("g1", LIMITED, DGM_API1, { assignedBy: SUB, timeoutMs: 1_000 }),
    ];
    const timedOut = spec(governor)
      .given(facts)
      .when(tick(1_500))
      .then([{ type: "TaskTimedOut", agentId: DGM_API1, attempt: 1, timeoutMs: 1_000, elapsedMs: 1_500 }]);
    spec(governor)
      .given(facts)
      .when(asEvent(timedOut[0]!))
      .then([{ type: "TaskRetried", attempt: 2, excludeAgentIds: [DGM_API1] }]);
    // The mayor-level tier of aamas is not in dgm: no mayor times it out as well.
    spec(mayor).given(facts).when(tick(1_500)).thenNothing();
  });
});

// ---- goal deadlines -------------------------------------------------------------------------------

const DEADLINE = at(10_000);
const DAG = [task("api", "backend", "api"), task("ui", "frontend", "react")];

/** An accepted goal with a deadline 10 s after its submission at NOW, as the president's own decisions. */
function goalWithDeadline(constraints: Record<string, string> = {}): Given[] {
  return spec(president).when(submitGoal({ tasks: DAG, deadline: DEADLINE, constraints })).decisions;
}

describe("time limits: goal deadlines", () => {
  it("at 80% of the time to its deadline a running goal is at risk, once", () => {
    const goal = goalWithDeadline();
    spec(president).given(goal).when(tick(7_999)).thenNothing();
    const risk = spec(president)
      .given(goal)
      .when(tick(8_000))
      .then([
        {
          type: "EscalationRaised",
          escalationId: "esc-deadline-at-risk-g1",
          goalId: "g1",
          taskId: null,
          kind: "DEADLINE_AT_RISK",
          severity: "WARNING",
          fromAgentId: "aamas-president",
          toAgentId: null,
          toTier: "SYSTEM",
          reason:
            "deadline 2030-01-01T12:00:10.000Z is at risk: 80% of the time from submission has passed with 0 of 2 task(s) done, 2000 ms left",
        },
      ]);
    spec(president)
      .given([...goal, ...risk])
      .when(tick(9_000))
      .thenNothing();
  });

  it("the deadline passed with the goal running: GoalFailed naming the deadline, open tasks cancelled, the at-risk escalation closed", () => {
    const goal = goalWithDeadline();
    const risk = spec(president).given(goal).when(tick(8_000)).decisions;
    const decisions = spec(president)
      .given([...goal, ...risk])
      .when(tick(10_000))
      .then([
        {
          type: "GoalFailed",
          goalId: "g1",
          reason:
            "deadline 2030-01-01T12:00:10.000Z passed with 0 of 2 task(s) done: President fails the goal (onMiss fail)",
          escalationId: "esc-deadline-at-risk-g1",
        },
        { type: "TaskCancelled", taskId: "api", cause: "GOAL_FAILED" },
        { type: "TaskCancelled", taskId: "ui", cause: "GOAL_FAILED" },
        { type: "EscalationResolved", escalationId: "esc-deadline-at-risk-g1", outcome: "FAIL_GOAL" },
        { type: "NotificationBroadcast" },
      ]);
    // Decided again after a restart: the failure is in the state.
    spec(president)
      .given([...goal, ...risk, ...decisions])
      .when(tick(11_000))
      .thenNothing();
    assert.equal(stateOf([...goal, ...risk, ...decisions]).deadlines.size, 0);
  });

  it("a deadline passed while no tick came (the president was down) fails the goal without an at-risk escalation first", () => {
    spec(president)
      .given(goalWithDeadline())
      .when(tick(60_000))
      .then([
        { type: "GoalFailed", escalationId: null },
        { type: "TaskCancelled" },
        { type: "TaskCancelled" },
        { type: "NotificationBroadcast" },
      ]);
  });

  it("onDeadlineMiss warn: the miss is recorded once, and the goal goes on", () => {
    const goal = goalWithDeadline({ onDeadlineMiss: "warn" });
    const missed = spec(president)
      .given(goal)
      .when(tick(10_500))
      .then([
        {
          type: "EscalationRaised",
          escalationId: "esc-deadline-missed-g1",
          kind: "DEADLINE_AT_RISK",
          severity: "CRITICAL",
          reason: "deadline 2030-01-01T12:00:10.000Z passed with 0 of 2 task(s) done; onMiss is warn: the goal goes on",
        },
      ]);
    spec(president)
      .given([...goal, ...missed])
      .when(tick(20_000))
      .thenNothing();
  });

  it("the topology's deadlines settings apply when the goal sets none; its constraints override them", () => {
    const warnAt50 = context({ timeLimits: () => limits({ atRiskFraction: 0.5, onMiss: "warn" }) });
    spec(president, warnAt50)
      .given(goalWithDeadline())
      .when(tick(5_000))
      .then([{ type: "EscalationRaised", escalationId: "esc-deadline-at-risk-g1" }]);
    spec(president, warnAt50)
      .given(goalWithDeadline({ deadlineAtRisk: "0.9" }))
      .when(tick(5_000))
      .thenNothing();
    spec(president, warnAt50)
      .given(goalWithDeadline())
      .when(tick(10_000))
      .then([{ type: "EscalationRaised", escalationId: "esc-deadline-missed-g1" }]);
  });

  it("a goal completed before its deadline gets nothing, and is watched no more", () => {
    const goal = goalWithDeadline();
    const done: Given[] = [...goal];
    for (const t of DAG) {
      const more = spec(president)
        .given(done)
        .when(completed("g1", t.id, "someone")).decisions;
      done.push(completed("g1", t.id, "someone"), ...more);
    }
    assert.ok(done.some((d) => "type" in d && d.type === "GoalCompleted"));
    spec(president).given(done).when(tick(9_000)).thenNothing();
    spec(president).given(done).when(tick(60_000)).thenNothing();
    assert.equal(stateOf(done).deadlines.size, 0);
  });

  it("a goal that ends after its at-risk escalation closes it", () => {
    const goal = goalWithDeadline();
    const risk = spec(president).given(goal).when(tick(8_000)).decisions;
    const done: Given[] = [...goal, ...risk];
    for (const t of DAG) {
      const more = spec(president)
        .given(done)
        .when(completed("g1", t.id, "someone")).decisions;
      done.push(completed("g1", t.id, "someone"), ...more);
    }
    spec(president)
      .given(done)
      .when(tick(9_000))
      .then([
        { type: "EscalationResolved", escalationId: "esc-deadline-at-risk-g1", outcome: "RESOLVED_WITH_GUIDANCE" },
      ]);
  });

  it("the president rejects deadline constraints it cannot read", () => {
    const decisions = spec(president).when(
      submitGoal({ tasks: DAG, deadline: DEADLINE, constraints: { deadlineAtRisk: "1.5", onDeadlineMiss: "ignore" } }),
    ).decisions;
    const [rejected] = ofType(decisions, "GoalRejected");
    assert.equal(rejected?.code, "INVALID_REQUEST");
    assert.deepStrictEqual(rejected?.reasons, [
      'constraint deadlineAtRisk must be a number between 0 and 1 (exclusive), got "1.5"',
      'constraint onDeadlineMiss must be one of fail, warn, got "ignore"',
    ]);
  });
});

describe("time limits: configuration", () => {
  it("names a worker group timeoutMs or deadlines setting that is not valid", () => {
    const config = structuredClone(TEST_TOPOLOGY);
    config.topologies.aamas!.domains.backend!.workers.api!.timeoutMs = 0;
    config.topologies.dgm!.domains.backend!.workers.api!.timeoutMs = 31 * 24 * 3600 * 1000;
    (config.topologies.aamas as { deadlines?: unknown }).deadlines = { atRiskFraction: 1, onMiss: "retry" };
    assert.deepStrictEqual(topologyProblems(config), [
      "topologies.aamas.deadlines.atRiskFraction must be a number between 0 and 1 (exclusive), got 1",
      'topologies.aamas.deadlines.onMiss must be one of fail, warn, got "retry"',
      "topologies.aamas.domains.backend.workers.api.timeoutMs must be a whole number of milliseconds from 1 to 2592000000 (30 days), got 0",
      "topologies.dgm.domains.backend.workers.api.timeoutMs must be a whole number of milliseconds from 1 to 2592000000 (30 days), got 2678400000",
    ]);
  });
});
