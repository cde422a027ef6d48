import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { PolityEvent } from "../../schemas/reader.js";
import type { Decision } from "../../processors/domain/decider.js";
import { president } from "../../processors/domain/president.js";
import {
  assigned,
  completed,
  escalation,
  ev,
  failed,
  ofType,
  spec,
  started,
  submitGoal,
  task,
  TENANT,
  type Given,
} from "../support/decider-spec.js";

const API = task("api", "backend", "api");
const UI = task("ui", "frontend", "react");

/** An accepted goal of `topology` over backend and frontend, as the president's own decisions. */
const accepted = (topology: "aamas" | "dgm" = "aamas"): Decision[] =>
  spec(president).when(submitGoal({ tasks: [API, UI], topology, title: "Ship the shop" })).decisions;

const stop = (by = "operator-1"): PolityEvent =>
  ev("StopGoal", { goalId: "g1", reason: "budget cut" }, { actor: { id: by, tier: "USER" } });

describe("notifications: goal outcomes announced to the hierarchy", () => {
  it("a completed goal is announced to every tier of its topology, in the domains it reached, by the top", () => {
    const history: Given[] = [...accepted("dgm"), completed("g1", "api", "w", { cost: "0.5000" })];
    const decisions = spec(president)
      .given(history)
      .when(completed("g1", "ui", "w", { cost: "0.2500" }))
      .then([
        { type: "GoalCompleted" },
        { type: "GoalSnapshotTaken" },
        {
          type: "NotificationBroadcast",
          notificationId: "goal-completed-g1",
          subject: "goal-completed",
          message: 'Goal "Ship the shop" (g1) completed: 2 task(s) completed in 0 ms, cost 0.7500',
          severity: "INFO",
          audienceTiers: ["MASTER", "SUB_MASTER", "WORKER"],
          audienceDomains: ["backend", "frontend"],
          goalId: "g1",
          expiresAt: null,
          data: { goalId: "g1", outcome: "COMPLETED", tasksCompleted: "2", durationMs: "0", totalCost: "0.7500" },
        },
      ]);
    const notice = decisions[2]!;
    // polity.notifications is keyed by tenant: the notice is about the tenant, written by the master.
    assert.deepStrictEqual(notice.aggregate, { type: "SYSTEM", id: TENANT, version: -1 });
    assert.deepStrictEqual(notice.actor, { id: "dgm-master", tier: "MASTER" });
    // Announced once: the completion delivered again decides nothing.
    spec(president)
      .given([...history, completed("g1", "ui", "w", { cost: "0.2500" }), ...decisions])
      .when(completed("g1", "ui", "w", { cost: "0.2500" }))
      .thenNothing();
  });

  it("a failed goal is announced as CRITICAL with the whole chain, once; a later escalation announces nothing", () => {
    const W = "aamas-worker-backend-api-1";
    const history: Given[] = [...accepted(), assigned("g1", API, W), failed("g1", "api", W, { retryable: false })];
    const raised = escalation({
      escalationId: "e1",
      goalId: "g1",
      taskId: "api",
      toAgentId: "aamas-president",
      toTier: "PRESIDENT",
      reason: "Governor of backend cannot settle it",
      reasonChain: [`attempt 1 on ${W} failed: boom`],
    });
    const decisions = spec(president).given(history).when(raised).decisions;
    const [notice] = ofType(decisions, "NotificationBroadcast");
    assert.equal(decisions.at(-1)!.type, "NotificationBroadcast", "announced after every fact it sums up");
    assert.deepStrictEqual(
      [notice!.subject, notice!.severity, notice!.notificationId],
      ["goal-failed", "CRITICAL", "goal-failed-g1"],
    );
    assert.equal(
      notice!.message,
      `Goal "Ship the shop" (g1) failed: attempt 1 on ${W} failed: boom -> Governor of backend cannot settle it -> President: no policy allows another attempt: the goal fails and its open tasks are cancelled`,
    );
    assert.deepStrictEqual(notice!.data, { goalId: "g1", outcome: "FAILED", escalationId: "e1", failedTaskIds: "api" });
    spec(president)
      .given([...history, raised, ...decisions])
      .when(escalation({ escalationId: "e2", goalId: "g1", taskId: "ui", toAgentId: "aamas-president" }))
      .thenTypes(["EscalationResolved"]);
  });

  it("a stopped goal is announced with who stopped it and what was cancelled; a second stop announces nothing", () => {
    const history: Given[] = [...accepted(), started("g1", "api", "aamas-worker-backend-api-1")];
    const decisions = spec(president).given(history).when(stop()).decisions;
    const [notice] = ofType(decisions, "NotificationBroadcast");
    assert.equal(decisions.at(-1)!.type, "NotificationBroadcast");
    assert.equal(
      notice!.message,
      'Goal "Ship the shop" (g1) stopped: emergency stop by operator-1: budget cut; 2 open task(s) cancelled',
    );
    assert.deepStrictEqual(notice!.data, {
      goalId: "g1",
      outcome: "STOPPED",
      requestedBy: "operator-1",
      reason: "budget cut",
      cancelledTaskIds: "api,ui",
    });
    spec(president)
      .given([...history, ...decisions])
      .when(stop("operator-2"))
      .thenNothing();
  });

  it("each rejected submission is announced under its own command, even for the same goal id", () => {
    const first = submitGoal({ priority: 0 });
    const second = submitGoal({ priority: 11 });
    const id = (e: PolityEvent) => (e.value as { envelope: { eventId: string } }).envelope.eventId;
    const notices = [first, second].map(
      (cmd) => ofType(spec(president).when(cmd).decisions, "NotificationBroadcast")[0]!,
    );
    assert.deepStrictEqual(
      notices.map((n) => n.notificationId),
      [`goal-rejected-${id(first)}`, `goal-rejected-${id(second)}`],
    );
    assert.deepStrictEqual(notices[0]!.data, {
      goalId: "g1",
      outcome: "REJECTED",
      commandId: id(first),
      code: "INVALID_REQUEST",
      submittedBy: "test-user",
      violatedPolicies: "",
    });
    assert.equal(notices[0]!.severity, "WARNING");
    // A goal without hints or tasks would have used every domain of its topology.
    assert.deepStrictEqual(notices[0]!.audienceDomains, ["backend", "frontend", "testing"]);
  });

  it("an accepted goal is not announced: only outcomes are", () => {
    assert.deepStrictEqual(ofType(accepted(), "NotificationBroadcast"), []);
  });
});
