import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Actor, Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { dispatchToWorkers } from "../../processors/domain/dispatch.js";
import { governor } from "../../processors/domain/governor.js";
import { reassignFromFailed } from "../../processors/domain/reassign.js";
import { mayor } from "../../processors/domain/mayor.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { policy } from "../../processors/domain/policy.js";
import { president } from "../../processors/domain/president.js";
import { accessRulesProblems, edgesBetween } from "../../processors/domain/policies/security.js";
import { worker } from "../../processors/domain/worker.js";
import {
  asEvent,
  assigned,
  completed,
  context,
  created,
  DIRECTORY,
  directoryOf,
  ev,
  NOW,
  ofType,
  requestPhase,
  spec,
  started,
  stateOf,
  submitGoal,
  task,
  type Given,
} from "../support/decider-spec.js";

const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);

const PRESIDENT = "aamas-president";
const GOV = "aamas-governor-backend";
const M1 = "aamas-mayor-backend-1";
const API1 = "aamas-worker-backend-api-1";
const API2 = "aamas-worker-backend-api-2";
const DB1 = "aamas-worker-backend-database-1";
const REACT1 = "aamas-worker-frontend-react-1";
const SUB = "dgm-submaster-backend";
const SUB_FE = "dgm-submaster-frontend";

const OPERATOR: Actor = { id: "operator-1", tier: "USER" };
const AUTOSTOP: Actor = { id: "cost-guard", tier: "SYSTEM" };

function define(
  policyId: string,
  category: "SECURITY" | "COMMUNICATION",
  rules: object,
  overrides: Partial<Payload<"DefinePolicy">> = {},
): PolityEvent {
  return ev(
    "DefinePolicy",
    {
      policyId,
      name: policyId,
      category,
      description: `${policyId} rules`,
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
      ...overrides,
    },
    { aggregate: { type: "POLICY", id: policyId, version: -1 } },
  );
}

function amend(policyId: string, expectedVersion: number, rules: object, effectiveFrom: Date | null): PolityEvent {
  return ev(
    "AmendPolicy",
    {
      policyId,
      expectedVersion,
      rules: JSON.stringify(rules),
      description: null,
      appliesToTiers: null,
      domains: null,
      precedence: null,
      rationale: "tightened",
      effectiveFrom,
    },
    { aggregate: { type: "POLICY", id: policyId, version: -1 } },
  );
}

/** The book the policy engine writes for `commands`, decided one after the other at their times. */
function book(...commands: { cmd: PolityEvent; now: Date }[]): PolicyBook {
  const events: PolityEvent[] = [];
  for (const { cmd, now } of commands) {
    const decisions = spec(policy, context({ now })).given(events).when(cmd).decisions;
    assert.deepStrictEqual(
      decisions.map((d) => d.type).filter((t) => t === "PolicyEvaluated"),
      [],
      `policy command refused: ${JSON.stringify(decisions.map((d) => d.payload))}`,
    );
    events.push(...decisions.map((d) => asEvent(d, { occurredAt: now })));
  }
  const out = new PolicyBook();
  for (const e of events) out.apply(e);
  return out;
}

/** `e` as if it had occurred at `when` (the time policies are consulted at), decided whenever. */
const occurring = (e: PolityEvent, when: Date): PolityEvent => {
  const value = e.value as unknown as { envelope: object };
  return { ...e, value: { ...value, envelope: { ...value.envelope, occurredAt: when } } } as unknown as PolityEvent;
};

const eventIdOf = (e: PolityEvent) => (e.value as unknown as { envelope: { eventId: string } }).envelope.eventId;

const withPolicies = (decider: typeof president, policies: PolicyBook, now = at(1)) =>
  spec(decider, context({ now, policies }));

const API = task("api", "backend", "api");
const DB = task("db", "backend", "database", ["api"]);

/** An accepted goal with api running on API1 and db waiting (decided with no policy in effect). */
function runningGoal(): Given[] {
  return [
    ...spec(president).when(submitGoal({ tasks: [API, DB] })).decisions,
    assigned("g1", API, M1),
    assigned("g1", API, API1),
    started("g1", "api", API1),
  ];
}

function stopGoal(actor: Actor, occurredAt = at(1)): PolityEvent {
  return ev("StopGoal", { goalId: "g1", reason: "runaway costs" }, { actor, occurredAt });
}

// ---- the rule languages ----------------------------------------------------------------------

describe("security and communication rule languages", () => {
  it("accepts every documented rule", () => {
    assert.deepStrictEqual(
      accessRulesProblems(
        "SECURITY",
        JSON.stringify({
          principle: "Only operators command",
          commandTiers: { SubmitGoal: ["USER"], StopGoal: ["USER", "SYSTEM"], RequestPhaseTransition: ["USER"] },
          commandActors: { StopGoal: ["cost-guard"] },
          deniedActors: ["mallory"],
          assignTo: { PRESIDENT: ["GOVERNOR"], GOVERNOR: ["MAYOR"], MAYOR: ["WORKER"], SUB_MASTER: ["WORKER"] },
          enforcement: "FLAGGED",
        }),
      ),
      [],
    );
    assert.deepStrictEqual(
      accessRulesProblems(
        "COMMUNICATION",
        JSON.stringify({
          principle: "Talk along the chain of command",
          contextEdges: ["SUPERIOR", "CHAIN_OF_COMMAND"],
          queryEdges: ["TEAM", "DOMAIN", "ANY"],
          enforcement: "BLOCKED",
        }),
      ),
      [],
    );
  });

  it("refuses unknown rules, naming the category's rules, and rules of the other category", () => {
    assert.deepStrictEqual(accessRulesProblems("SECURITY", '{"commandTier": {}, "queryEdges": ["ANY"]}'), [
      'unknown rule "commandTier"; SECURITY rules are principle, commandTiers, commandActors, deniedActors, assignTo, enforcement',
      'unknown rule "queryEdges" (a COMMUNICATION rule); SECURITY rules are principle, commandTiers, commandActors, deniedActors, assignTo, enforcement',
    ]);
    assert.deepStrictEqual(accessRulesProblems("COMMUNICATION", '{"assignTo": {}}'), [
      'unknown rule "assignTo" (a SECURITY rule); COMMUNICATION rules are principle, contextEdges, queryEdges, enforcement',
    ]);
  });

  it("refuses unknown commands, tiers and edges, and values of the wrong shape", () => {
    const problems = accessRulesProblems(
      "SECURITY",
      JSON.stringify({
        commandTiers: { DeleteGoal: ["USER"], StopGoal: ["ADMIN"] },
        commandActors: { StopGoal: "alice" },
        deniedActors: "mallory",
        assignTo: { WORKER: ["WORKER"] },
        enforcement: "SOMETIMES",
      }),
    );
    assert.equal(problems.length, 6);
    assert.match(problems[0]!, /enforcement/);
    assert.match(problems[1]!, /"commandTiers" names "DeleteGoal", which is not a governed command/);
    assert.match(problems[2]!, /"commandTiers" for "StopGoal" must be an array of tiers/);
    assert.match(problems[3]!, /"commandActors" for "StopGoal" must be an array of actor ids/);
    assert.match(problems[4]!, /"deniedActors" must be an array of actor ids/);
    assert.match(problems[5]!, /"assignTo" names "WORKER", which is not a tier that assigns tasks/);
    assert.match(
      accessRulesProblems("COMMUNICATION", '{"contextEdges": ["SIDEWAYS"]}')[0]!,
      /"contextEdges" must be an array of edges \(SUPERIOR, CHAIN_OF_COMMAND, TEAM, DOMAIN, ANY\)/,
    );
    assert.match(accessRulesProblems("SECURITY", "[]")[0]!, /must be a JSON object/);
    assert.match(accessRulesProblems("COMMUNICATION", "{")[0]!, /not JSON/);
  });

  it("the policy engine refuses a SECURITY or COMMUNICATION policy with an unknown rule", () => {
    const [refusal] = ofType(
      spec(policy)
        .when(define("ops", "SECURITY", { commandTiers: { StopGoal: ["USER"] }, stopTiers: ["USER"] }))
        .thenTypes(["PolicyEvaluated"]),
      "PolicyEvaluated",
    );
    assert.equal(refusal!.decision, "DENY");
    assert.match(refusal!.reasons[0]!, /policy "ops" not defined: unknown rule "stopTiers"/);
    const [amendRefusal] = ofType(
      spec(policy, context({ now: at(1) }))
        .given([asEvent(spec(policy).when(define("talk", "COMMUNICATION", { queryEdges: ["TEAM"] })).decisions[0]!)])
        .when(amend("talk", 1, { queryEdge: ["TEAM"] }, null))
        .thenTypes(["PolicyEvaluated"]),
      "PolicyEvaluated",
    );
    assert.match(amendRefusal!.reasons[0]!, /amendment of policy "talk" refused: unknown rule "queryEdge"/);
  });

  it("names the edges between two agents from the directory", () => {
    const edges = (from: string, to: string) => [...edgesBetween(DIRECTORY, from, DIRECTORY.get(to)!)].sort();
    assert.deepStrictEqual(edges(API1, M1), ["ANY", "CHAIN_OF_COMMAND", "DOMAIN", "SUPERIOR"]);
    assert.deepStrictEqual(edges(API1, PRESIDENT), ["ANY", "CHAIN_OF_COMMAND"]);
    assert.deepStrictEqual(edges(PRESIDENT, API1), ["ANY", "CHAIN_OF_COMMAND"]);
    assert.deepStrictEqual(edges(API1, DB1), ["ANY", "DOMAIN", "TEAM"]);
    assert.deepStrictEqual(edges(API1, API2), ["ANY", "DOMAIN"]);
    assert.deepStrictEqual(edges(API1, REACT1), ["ANY"]);
    assert.deepStrictEqual(edges("someone-outside", API1), ["ANY"]);
  });
});

// ---- SECURITY: commands to the top ----------------------------------------------------------

describe("security: who may command the president", () => {
  const stopOnlyBySystem = book({
    cmd: define("stop-by-system", "SECURITY", {
      principle: "Only automated guards stop goals",
      commandTiers: { StopGoal: ["SYSTEM"] },
    }),
    now: NOW,
  });

  it("refuses a StopGoal from a tier that may not issue it with a DENY evaluation, and stops nothing", () => {
    withPolicies(president, stopOnlyBySystem)
      .given(runningGoal())
      .when(stopGoal(OPERATOR))
      .then([
        {
          type: "PolicyEvaluated",
          goalId: "g1",
          subject: { type: "StopGoal", id: "g1", agentId: null },
          category: "SECURITY",
          policyId: "stop-by-system",
          policyVersion: 1,
          decision: "DENY",
          consultedPolicies: [{ policyId: "stop-by-system", version: 1 }],
          reasons: [
            'policy "stop-by-system" v1 (commandTiers): StopGoal by operator-1 (USER) is not allowed; allowed: tier SYSTEM [Only automated guards stop goals]',
          ],
        },
      ]);
  });

  it("stops the goal for a tier that may, recording the ALLOW first", () => {
    const decisions = withPolicies(president, stopOnlyBySystem)
      .given(runningGoal())
      .when(stopGoal(AUTOSTOP))
      .then([
        {
          type: "PolicyEvaluated",
          decision: "ALLOW",
          policyVersion: 1,
          reasons: ['allowed by every security policy in effect: "stop-by-system" v1'],
        },
        { type: "GoalStopped", requestedBy: "cost-guard", cancelledTaskIds: ["api", "db"] },
        { type: "TaskCancelled", taskId: "api" },
        { type: "TaskCancelled", taskId: "db" },
        { type: "NotificationBroadcast", subject: "goal-stopped" },
      ]);
    assert.deepStrictEqual(decisions[0]!.actor, { id: PRESIDENT, tier: "PRESIDENT" });
  });

  it("admits an actor named in commandActors whatever its tier, and refuses a denied actor every command", () => {
    const policies = book({
      cmd: define("ops", "SECURITY", {
        commandTiers: { StopGoal: ["SYSTEM"] },
        commandActors: { StopGoal: ["operator-1"] },
        deniedActors: ["mallory"],
      }),
      now: NOW,
    });
    withPolicies(president, policies)
      .given(runningGoal())
      .when(stopGoal(OPERATOR))
      .thenMatches((ds) => ds[0]!.type === "PolicyEvaluated" && ds[1]!.type === "GoalStopped");
    const [denied] = ofType(
      withPolicies(president, policies)
        .when(submitGoal({ tasks: [API] }, { actor: { id: "mallory", tier: "USER" }, occurredAt: at(1) }))
        .thenTypes(["PolicyEvaluated", "GoalRejected", "NotificationBroadcast"]),
      "PolicyEvaluated",
    );
    assert.deepStrictEqual(denied!.reasons, [
      'policy "ops" v1 (deniedActors): SubmitGoal by mallory (USER) is refused: mallory may issue no command',
    ]);
  });

  it("rejects a SubmitGoal its issuer may not issue as POLICY_DENIED, once", () => {
    const policies = book({
      cmd: define("users-submit", "SECURITY", { commandTiers: { SubmitGoal: ["USER"] } }),
      now: NOW,
    });
    const command = submitGoal({ tasks: [API] }, { actor: { id: "rogue-worker", tier: "WORKER" }, occurredAt: at(1) });
    const decisions = withPolicies(president, policies)
      .when(command)
      .then([
        {
          type: "PolicyEvaluated",
          subject: { type: "SubmitGoal", id: "g1", agentId: "rogue-worker" },
          decision: "DENY",
        },
        {
          type: "GoalRejected",
          goalId: "g1",
          code: "POLICY_DENIED",
          reasons: [
            'policy "users-submit" v1 (commandTiers): SubmitGoal by rogue-worker (WORKER) is not allowed; allowed: tier USER',
          ],
          violatedPolicies: [{ policyId: "users-submit", version: 1 }],
        },
        { type: "NotificationBroadcast", subject: "goal-rejected", goalId: "g1" },
      ]);
    withPolicies(president, policies).given(decisions).when(command).thenNothing();
    // A user's submission is accepted, the ALLOW first and its version among those validated.
    const accepted = withPolicies(president, policies).when(
      submitGoal({ tasks: [API] }, { occurredAt: at(1) }),
    ).decisions;
    assert.deepStrictEqual(
      accepted.slice(0, 3).map((d) => d.type),
      ["PolicyEvaluated", "GoalSubmitted", "GoalValidated"],
    );
    assert.deepStrictEqual(ofType(accepted, "GoalValidated")[0]!.consultedPolicies, [
      { policyId: "users-submit", version: 1 },
    ]);
  });

  it("refuses a phase transition its issuer may not request, with the policy's reasons", () => {
    const policies = book({
      cmd: define("pm-only", "SECURITY", { commandActors: { RequestPhaseTransition: ["project-manager"] } }),
      now: NOW,
    });
    const tasks = [task("charter", "backend", "api", [], { phase: "INITIATION" })];
    const history: Given[] = [
      ...spec(president).when(submitGoal({ kind: "PROJECT", tasks, constraints: { phaseGate: "manual" } })).decisions,
      completed("g1", "charter", "w"),
    ];
    const request = requestPhase("g1", "INITIATION", "FEASIBILITY");
    withPolicies(president, policies)
      .given(history)
      .when(request)
      .then([
        {
          type: "PolicyEvaluated",
          subject: { type: "RequestPhaseTransition", id: "g1", agentId: null },
          decision: "DENY",
        },
        {
          type: "PhaseTransitionRejected",
          currentPhase: "INITIATION",
          toPhase: "FEASIBILITY",
          reasons: [
            'policy "pm-only" v1 (commandActors): RequestPhaseTransition by test-user (USER) is not allowed; allowed: project-manager',
          ],
        },
      ]);
    const asManager = ev(
      "RequestPhaseTransition",
      { goalId: "g1", fromPhase: "INITIATION", toPhase: "FEASIBILITY", justification: null },
      { actor: { id: "project-manager", tier: "USER" } },
    );
    withPolicies(president, policies)
      .given(history)
      .when(asManager)
      .thenMatches((ds) => ds[0]!.type === "PolicyEvaluated" && ds[1]!.type === "PhaseTransitioned");
  });

  it("an amendment mid-goal governs only the commands issued after it takes effect", () => {
    // v1 lets users and guards stop goals; v2, accepted at 10 and in effect from 30, only guards.
    const policies = book(
      { cmd: define("stoppers", "SECURITY", { commandTiers: { StopGoal: ["USER", "SYSTEM"] } }), now: NOW },
      { cmd: amend("stoppers", 1, { commandTiers: { StopGoal: ["SYSTEM"] } }, at(30)), now: at(10) },
    );
    // Both decided late (now = 40): each answers to the version in effect when it was issued.
    const before = withPolicies(president, policies, at(40))
      .given(runningGoal())
      .when(stopGoal(OPERATOR, at(20))).decisions;
    assert.deepStrictEqual(
      ofType(before, "PolicyEvaluated").map((p) => [p.decision, p.policyVersion]),
      [["ALLOW", 1]],
    );
    assert.equal(before[1]!.type, "GoalStopped");
    withPolicies(president, policies, at(40))
      .given(runningGoal())
      .when(stopGoal(OPERATOR, at(31)))
      .then([
        {
          type: "PolicyEvaluated",
          decision: "DENY",
          policyVersion: 2,
          consultedPolicies: [{ policyId: "stoppers", version: 2 }],
        },
      ]);
  });

  it("records a FLAGGED breach as a WARN and lets the command through with the warning", () => {
    const policies = book({
      cmd: define("watch", "SECURITY", { commandTiers: { SubmitGoal: ["SYSTEM"] }, enforcement: "FLAGGED" }),
      now: NOW,
    });
    const decisions = withPolicies(president, policies).when(
      submitGoal({ tasks: [API] }, { occurredAt: at(1) }),
    ).decisions;
    assert.deepStrictEqual(
      decisions.slice(0, 3).map((d) => d.type),
      ["PolicyEvaluated", "GoalSubmitted", "GoalValidated"],
    );
    assert.equal(ofType(decisions, "PolicyEvaluated")[0]!.decision, "WARN");
    assert.match(
      ofType(decisions, "GoalValidated")[0]!.warnings[0]!,
      /"watch" v1 \(commandTiers\): SubmitGoal by test-user/,
    );
  });

  it("consults only policies in scope, in effect, and with a rule about the command", () => {
    const policies = book(
      {
        cmd: define("dgm-only", "SECURITY", { commandTiers: { StopGoal: ["SYSTEM"] } }, { appliesToTiers: ["MASTER"] }),
        now: NOW,
      },
      {
        cmd: define("frontend-only", "SECURITY", { commandTiers: { StopGoal: ["SYSTEM"] } }, { domains: ["frontend"] }),
        now: NOW,
      },
      {
        cmd: define("later", "SECURITY", { commandTiers: { StopGoal: ["SYSTEM"] } }, { effectiveFrom: at(60) }),
        now: NOW,
      },
      { cmd: define("submit-rule", "SECURITY", { commandTiers: { SubmitGoal: ["SYSTEM"] } }), now: NOW },
      { cmd: define("assign-rule", "SECURITY", { assignTo: { MAYOR: ["WORKER"] } }), now: NOW },
    );
    // An aamas backend goal stopped by a user at 1: none of them has a say, and nothing records it.
    withPolicies(president, policies)
      .given(runningGoal())
      .when(stopGoal(OPERATOR))
      .thenMatches((ds) => ds[0]!.type === "GoalStopped");
  });
});

// ---- SECURITY: assignment edges -------------------------------------------------------------

describe("security: which tier may assign to which", () => {
  const atMayor: Given[] = [created("g1", API), assigned("g1", API, GOV)];

  it("records the ALLOW of an assignment a policy has a rule about, then assigns", () => {
    const policies = book({ cmd: define("chain", "SECURITY", { assignTo: { MAYOR: ["WORKER"] } }), now: NOW });
    withPolicies(mayor, policies)
      .given(atMayor)
      .when(assigned("g1", API, M1))
      .then([
        {
          type: "PolicyEvaluated",
          goalId: "g1",
          subject: { type: "TaskAssigned", id: "api", agentId: M1 },
          category: "SECURITY",
          decision: "ALLOW",
          consultedPolicies: [{ policyId: "chain", version: 1 }],
        },
        { type: "TaskAssigned", assigneeId: API1, assigneeTier: "WORKER" },
      ]);
  });

  it("refuses an assignment edge the policy forbids: DENY, and the task escalated to the superior once", () => {
    const policies = book({
      cmd: define("no-direct-work", "SECURITY", { principle: "Mayors delegate", assignTo: { MAYOR: [] } }),
      now: NOW,
    });
    const decisions = withPolicies(mayor, policies)
      .given(atMayor)
      .when(assigned("g1", API, M1))
      .then([
        {
          type: "PolicyEvaluated",
          subject: { type: "TaskAssigned", id: "api", agentId: M1 },
          decision: "DENY",
          reasons: [
            `policy "no-direct-work" v1 (assignTo): ${M1} (MAYOR) assigning task api to ${API1} WORKER is not allowed; MAYOR may assign to no tier [Mayors delegate]`,
          ],
        },
        {
          type: "EscalationRaised",
          escalationId: `esc-policy-g1-api-1-${M1}`,
          kind: "POLICY_VIOLATION",
          fromAgentId: M1,
          toAgentId: GOV,
          toTier: "GOVERNOR",
        },
      ]);
    // The task waits for its superior; a later dispatch (any input that frees a slot) does not
    // judge it again.
    const before = stateOf([...atMayor, assigned("g1", API, M1)]);
    assert.equal(dispatchToWorkers(before, DIRECTORY.get(M1)!, context({ now: at(5), policies })).length, 2);
    const after = stateOf([...atMayor, assigned("g1", API, M1), ...decisions]);
    assert.deepStrictEqual(dispatchToWorkers(after, DIRECTORY.get(M1)!, context({ now: at(5), policies })), []);
  });

  it("applies to the sub-master's dispatch in dgm, and only within the policy's domains", () => {
    const policies = book({
      cmd: define("frozen-backend", "SECURITY", { assignTo: { SUB_MASTER: [] } }, { domains: ["backend"] }),
      now: NOW,
    });
    const ui = task("ui", "frontend", "react");
    const state = stateOf([
      created("g1", API),
      assigned("g1", API, SUB),
      created("g1", ui),
      assigned("g1", ui, SUB_FE),
    ]);
    const ctx = context({ now: at(1), policies });
    const backend = dispatchToWorkers(state, DIRECTORY.get(SUB)!, ctx);
    assert.deepStrictEqual(
      backend.map((d) => d.type),
      ["PolicyEvaluated", "EscalationRaised"],
    );
    assert.deepStrictEqual(
      ofType(backend, "EscalationRaised").map((e) => [e.toAgentId, e.toTier]),
      [["dgm-master", "MASTER"]],
    );
    // The frontend sub-master is outside the policy's domains: it dispatches as before.
    assert.deepStrictEqual(
      dispatchToWorkers(state, DIRECTORY.get(SUB_FE)!, ctx).map((d) => d.type),
      ["TaskAssigned"],
    );
  });

  it("an amendment mid-goal governs only dispatches following from inputs after it takes effect, whenever decided", () => {
    const policies = book(
      { cmd: define("chain", "SECURITY", { assignTo: { MAYOR: ["WORKER"] } }), now: NOW },
      { cmd: amend("chain", 1, { assignTo: { MAYOR: [] } }, at(30)), now: at(10) },
    );
    // Decided after the amendment took effect (a late or redelivered input), on an input from before it.
    withPolicies(mayor, policies, at(31))
      .given(atMayor)
      .when(occurring(assigned("g1", API, M1), at(20)))
      .then([
        { type: "PolicyEvaluated", decision: "ALLOW", policyVersion: 1 },
        { type: "TaskAssigned", assigneeId: API1 },
      ]);
    withPolicies(mayor, policies, at(31))
      .given(atMayor)
      .when(occurring(assigned("g1", API, M1), at(31)))
      .then([
        { type: "PolicyEvaluated", decision: "DENY", policyVersion: 2 },
        { type: "EscalationRaised", kind: "POLICY_VIOLATION" },
      ]);
  });
});

// ---- COMMUNICATION: context requests and queries --------------------------------------------

function contextRequested(overrides: Partial<Payload<"ContextRequested">> = {}, occurredAt = at(1)): PolityEvent {
  return ev(
    "ContextRequested",
    {
      requestId: "req-1",
      goalId: "g1",
      taskId: "api",
      requesterId: API1,
      requesterTier: "WORKER",
      targetAgentId: null,
      need: "the goal's constraints",
      keys: [],
      ...overrides,
    },
    { occurredAt },
  );
}

function queryAsked(overrides: Partial<Payload<"QueryAsked">> = {}, occurredAt = at(1)): PolityEvent {
  return ev(
    "QueryAsked",
    {
      queryId: "q-1",
      goalId: "g1",
      taskId: "api",
      fromAgentId: DB1,
      fromTier: "WORKER",
      toAgentId: API1,
      toTier: "WORKER",
      question: "what did api give?",
      answerBy: null,
      ...overrides,
    },
    { occurredAt },
  );
}

describe("communication: which edges may carry requests and queries", () => {
  const upOnly = book({
    cmd: define("up-the-chain", "COMMUNICATION", {
      principle: "Ask your superior",
      contextEdges: ["SUPERIOR"],
      queryEdges: ["TEAM"],
    }),
    now: NOW,
  });
  const held: Given[] = [
    created("g1", API),
    assigned("g1", API, GOV),
    assigned("g1", API, M1),
    assigned("g1", API, API1),
  ];

  it("the superior answers a request along an allowed edge, recording the ALLOW first", () => {
    withPolicies(mayor, upOnly)
      .given(held)
      .when(contextRequested())
      .then([
        {
          type: "PolicyEvaluated",
          goalId: "g1",
          subject: { type: "ContextRequested", id: "req-1", agentId: API1 },
          category: "COMMUNICATION",
          policyId: "up-the-chain",
          decision: "ALLOW",
        },
        { type: "ContextProvided", requestId: "req-1", providerId: M1 },
      ]);
  });

  it("denies a request that skips the chain of command: a DENY evaluation, and no answer", () => {
    const [denied] = withPolicies(president, upOnly)
      .given([...spec(president).when(submitGoal({ tasks: [API] })).decisions, ...held.slice(1)])
      .when(contextRequested({ targetAgentId: PRESIDENT }))
      .then([
        {
          type: "PolicyEvaluated",
          subject: { type: "ContextRequested", id: "req-1", agentId: API1 },
          category: "COMMUNICATION",
          decision: "DENY",
          consultedPolicies: [{ policyId: "up-the-chain", version: 1 }],
          reasons: [
            `policy "up-the-chain" v1 (contextEdges): context request req-1 from ${API1} (WORKER) to ${PRESIDENT} (PRESIDENT) travels CHAIN_OF_COMMAND; allowed: SUPERIOR [Ask your superior]`,
          ],
        },
      ]);
    assert.deepStrictEqual(denied!.actor, { id: PRESIDENT, tier: "PRESIDENT" });
    // With CHAIN_OF_COMMAND allowed, the president answers it.
    const chain = book({ cmd: define("chain", "COMMUNICATION", { contextEdges: ["CHAIN_OF_COMMAND"] }), now: NOW });
    withPolicies(president, chain)
      .given([...spec(president).when(submitGoal({ tasks: [API] })).decisions, ...held.slice(1)])
      .when(contextRequested({ targetAgentId: PRESIDENT }))
      .then([
        { type: "PolicyEvaluated", decision: "ALLOW" },
        { type: "ContextProvided", providerId: PRESIDENT },
      ]);
  });

  it("a peer of the same team gets an answer to its query; a peer of another team is denied", () => {
    const done: Given[] = [...held, started("g1", "api", API1), completed("g1", "api", API1, { result: "api up" })];
    withPolicies(worker, upOnly)
      .given(done)
      .when(queryAsked())
      .then([
        { type: "PolicyEvaluated", subject: { type: "QueryAsked", id: "q-1", agentId: DB1 }, decision: "ALLOW" },
        { type: "QueryAnswered", fromAgentId: API1, toAgentId: DB1, answer: "api up" },
      ]);
    const [denied] = ofType(
      withPolicies(worker, upOnly)
        .given(done)
        .when(queryAsked({ fromAgentId: API2 }))
        .then([{ type: "PolicyEvaluated", decision: "DENY", category: "COMMUNICATION" }]),
      "PolicyEvaluated",
    );
    assert.match(
      denied!.reasons[0]!,
      /\(queryEdges\): query q-1 from .*api-2 \(WORKER\) to .*api-1 \(WORKER\) travels DOMAIN; allowed: TEAM/,
    );
    // Across domains there is no edge but ANY.
    withPolicies(worker, upOnly)
      .given(done)
      .when(queryAsked({ fromAgentId: REACT1 }))
      .thenTypes(["PolicyEvaluated"]);
  });

  it("an amendment mid-goal governs only the queries asked after it takes effect", () => {
    // v1 lets any peer of the domain ask; v2, in effect from 30, only the team.
    const policies = book(
      { cmd: define("peers", "COMMUNICATION", { queryEdges: ["DOMAIN"] }), now: NOW },
      { cmd: amend("peers", 1, { queryEdges: ["TEAM"] }, at(30)), now: at(10) },
    );
    const done: Given[] = [...held, started("g1", "api", API1), completed("g1", "api", API1)];
    withPolicies(worker, policies, at(40))
      .given(done)
      .when(queryAsked({ fromAgentId: API2 }, at(20)))
      .then([{ type: "PolicyEvaluated", decision: "ALLOW", policyVersion: 1 }, { type: "QueryAnswered" }]);
    withPolicies(worker, policies, at(40))
      .given(done)
      .when(queryAsked({ fromAgentId: API2, queryId: "q-2" }, at(31)))
      .then([{ type: "PolicyEvaluated", decision: "DENY", policyVersion: 2 }]);
  });

  it("answers as before, writing nothing more, when no communication policy has a rule about it", () => {
    const contextOnly = book({ cmd: define("ctx", "COMMUNICATION", { contextEdges: ["SUPERIOR"] }), now: NOW });
    const done: Given[] = [...held, started("g1", "api", API1), completed("g1", "api", API1)];
    withPolicies(worker, contextOnly)
      .given(done)
      .when(queryAsked({ fromAgentId: REACT1 }))
      .then([{ type: "QueryAnswered" }]);
  });
});

// ---- refusals are written once ---------------------------------------------------------------

/** A decision as its host writes it in answer to `input`: caused by it. */
const causedBy = (input: PolityEvent, ds: readonly Given[]): PolityEvent[] =>
  ds.map((d) => ("payload" in d ? asEvent(d, { causationId: eventIdOf(input) }) : d));

describe("refusals: a refused input decided again writes nothing new", () => {
  const stopOnlyBySystem = book({
    cmd: define("stop-by-system", "SECURITY", { commandTiers: { StopGoal: ["SYSTEM"] } }),
    now: NOW,
  });

  it("the state remembers a DENY by the event refused and, for a request or query, by its id; not an ALLOW", () => {
    const stop = stopGoal(OPERATOR);
    const [deny] = withPolicies(president, stopOnlyBySystem).given(runningGoal()).when(stop).decisions;
    const state = stateOf(causedBy(stop, [deny!]));
    assert.deepStrictEqual([...state.refused], [eventIdOf(stop)]);
    const q = queryAsked({ fromAgentId: REACT1 });
    const evaluated = (decision: "ALLOW" | "DENY", causationId: string) =>
      ev(
        "PolicyEvaluated",
        {
          goalId: "g1",
          subject: { type: "QueryAsked", id: decision === "DENY" ? "q-1" : "q-2", agentId: REACT1 },
          category: "COMMUNICATION",
          policyId: "p",
          policyVersion: 1,
          decision,
          consultedPolicies: [],
          reasons: [],
        },
        { causationId },
      );
    assert.deepStrictEqual(
      [...stateOf([evaluated("DENY", eventIdOf(q)), evaluated("ALLOW", "an-allowed-one")]).refused].sort(),
      [eventIdOf(q), "QueryAsked/q-1"].sort(),
    );
  });

  it("a refused StopGoal decided again (redelivered) writes no second DENY; another StopGoal is judged anew", () => {
    const stop = stopGoal(OPERATOR);
    const first = withPolicies(president, stopOnlyBySystem)
      .given(runningGoal())
      .when(stop)
      .thenTypes(["PolicyEvaluated"]);
    withPolicies(president, stopOnlyBySystem)
      .given([...runningGoal(), stop, ...causedBy(stop, first)])
      .when(stop)
      .then([]);
    // Without the refusal in the state (before this change), the same input was refused again.
    withPolicies(president, stopOnlyBySystem)
      .given([...runningGoal(), stop])
      .when(stop)
      .thenTypes(["PolicyEvaluated"]);
    // A later StopGoal by the platform is a new command: allowed, and the goal stops.
    withPolicies(president, stopOnlyBySystem)
      .given([...runningGoal(), stop, ...causedBy(stop, first)])
      .when(stopGoal(AUTOSTOP, at(2)))
      .thenMatches((ds) => ds[0]!.type === "PolicyEvaluated" && ds[1]!.type === "GoalStopped");
  });

  it("a refused context request is refused once: decided again, or sent again with the same requestId", () => {
    const upOnly = book({ cmd: define("up", "COMMUNICATION", { contextEdges: ["SUPERIOR"] }), now: NOW });
    const goal = [...spec(president).when(submitGoal({ tasks: [API] })).decisions, assigned("g1", API, M1)];
    const ask = contextRequested({ targetAgentId: PRESIDENT });
    const denied = withPolicies(president, upOnly)
      .given([...goal, assigned("g1", API, API1)])
      .when(ask)
      .then([{ type: "PolicyEvaluated", decision: "DENY" }]);
    const after = [...goal, assigned("g1", API, API1), ask, ...causedBy(ask, denied)];
    withPolicies(president, upOnly).given(after).when(ask).then([]);
    withPolicies(president, upOnly)
      .given(after)
      .when(contextRequested({ targetAgentId: PRESIDENT }))
      .then([]);
    // Another request is judged.
    withPolicies(president, upOnly)
      .given(after)
      .when(contextRequested({ targetAgentId: PRESIDENT, requestId: "req-2" }))
      .then([{ type: "PolicyEvaluated", decision: "DENY" }]);
  });

  it("a refused query is refused once, by the worker asked and by a mayor asked", () => {
    const teamOnly = book({ cmd: define("team", "COMMUNICATION", { queryEdges: ["TEAM"] }), now: NOW });
    const done: Given[] = [
      created("g1", API),
      assigned("g1", API, GOV),
      assigned("g1", API, M1),
      assigned("g1", API, API1),
      started("g1", "api", API1),
      completed("g1", "api", API1),
    ];
    const q = queryAsked({ fromAgentId: REACT1 });
    const denied = withPolicies(worker, teamOnly)
      .given(done)
      .when(q)
      .then([{ type: "PolicyEvaluated", decision: "DENY" }]);
    withPolicies(worker, teamOnly)
      .given([...done, q, ...causedBy(q, denied)])
      .when(q)
      .then([]);
    withPolicies(worker, teamOnly)
      .given([...done, q, ...causedBy(q, denied)])
      .when(queryAsked({ fromAgentId: REACT1 }))
      .then([]);
    const toMayor = queryAsked({ fromAgentId: REACT1, toAgentId: M1, toTier: "MAYOR", queryId: "q-m" });
    const mayorDenied = withPolicies(mayor, teamOnly)
      .given(done)
      .when(toMayor)
      .then([{ type: "PolicyEvaluated", decision: "DENY" }]);
    withPolicies(mayor, teamOnly)
      .given([...done, toMayor, ...causedBy(toMayor, mayorDenied)])
      .when(toMayor)
      .then([]);
  });
});

// ---- SECURITY: the governor's and the reassigning dispatcher's assignments --------------------

describe("security: governors hand tasks to mayors, and reassignments, under assignTo", () => {
  const noMayors = book({
    cmd: define("governors-hold", "SECURITY", { principle: "Governors keep it", assignTo: { GOVERNOR: [] } }),
    now: NOW,
  });
  const toMayors = book({
    cmd: define("governors-delegate", "SECURITY", { assignTo: { GOVERNOR: ["MAYOR"] } }),
    now: NOW,
  });

  it("the governor records the ALLOW of a hand-down to a mayor, then assigns", () => {
    withPolicies(governor, toMayors)
      .given([created("g1", API)])
      .when(assigned("g1", API, GOV))
      .then([
        {
          type: "PolicyEvaluated",
          subject: { type: "TaskAssigned", id: "api", agentId: GOV },
          decision: "ALLOW",
          consultedPolicies: [{ policyId: "governors-delegate", version: 1 }],
        },
        { type: "TaskAssigned", assigneeTier: "MAYOR" },
      ]);
  });

  it("a refused hand-down is not made: DENY, the task escalated to the top once, and not judged again", () => {
    const handed = assigned("g1", API, GOV);
    const decisions = withPolicies(governor, noMayors)
      .given([created("g1", API)])
      .when(handed)
      .then([
        {
          type: "PolicyEvaluated",
          decision: "DENY",
          reasons: [
            `policy "governors-hold" v1 (assignTo): ${GOV} (GOVERNOR) assigning task api to aamas-mayor-backend-1 MAYOR is not allowed; GOVERNOR may assign to no tier [Governors keep it]`,
          ],
        },
        {
          type: "EscalationRaised",
          escalationId: `esc-policy-g1-api-1-${GOV}`,
          kind: "POLICY_VIOLATION",
          fromAgentId: GOV,
          toAgentId: PRESIDENT,
        },
      ]);
    assert.match(ofType(decisions, "EscalationRaised")[0]!.reason, /may not hand task api to a mayor/);
    // Any later input that makes the governor hand out again does not judge it again.
    withPolicies(governor, noMayors)
      .given([created("g1", API), handed, ...decisions, created("g1", DB)])
      .when(assigned("g1", DB, GOV))
      .then([
        { type: "PolicyEvaluated", decision: "DENY" },
        { type: "EscalationRaised", taskId: "db" },
      ]);
  });

  it("is judged by the versions in effect when the input occurred, not when decided", () => {
    const policies = book(
      { cmd: define("gov", "SECURITY", { assignTo: { GOVERNOR: ["MAYOR"] } }), now: NOW },
      { cmd: amend("gov", 1, { assignTo: { GOVERNOR: [] } }, at(30)), now: at(10) },
    );
    withPolicies(governor, policies, at(40))
      .given([created("g1", API)])
      .when(occurring(assigned("g1", API, GOV), at(20)))
      .then([{ type: "PolicyEvaluated", decision: "ALLOW", policyVersion: 1 }, { type: "TaskAssigned" }]);
    withPolicies(governor, policies, at(40))
      .given([created("g1", API)])
      .when(occurring(assigned("g1", API, GOV), at(31)))
      .then([
        { type: "PolicyEvaluated", decision: "DENY", policyVersion: 2 },
        { type: "EscalationRaised", kind: "POLICY_VIOLATION" },
      ]);
  });

  it("a failed worker's task is not reassigned along a refused edge: it waits, escalated once", () => {
    const noWorkers = book({ cmd: define("mayors-hold", "SECURITY", { assignTo: { MAYOR: [] } }), now: NOW });
    const UI = task("ui", "frontend", "react");
    const GOV_FE = "aamas-governor-frontend";
    const M_FE = "aamas-mayor-frontend-1";
    const failure = ev("AgentFailed", {
      agentId: REACT1,
      tier: "WORKER",
      superiorId: M_FE,
      reason: "no heartbeat",
      missedHeartbeats: 3,
      lastHeartbeatAt: NOW,
      inFlightTasks: [],
    });
    const directory = directoryOf();
    directory.apply(failure);
    const running = stateOf([
      created("g1", UI),
      assigned("g1", UI, GOV_FE),
      assigned("g1", UI, M_FE),
      assigned("g1", UI, REACT1),
      started("g1", "ui", REACT1),
    ]);
    const held = (agentId: string | null) => agentId === M_FE;
    const allowed = reassignFromFailed(
      running,
      REACT1,
      context({
        directory,
        policies: book({ cmd: define("ok", "SECURITY", { assignTo: { MAYOR: ["WORKER"] } }), now: NOW }),
      }),
      (t) => t.mayorId,
      (id, c) => (held(id) ? c.directory.get(id)! : null),
      NOW,
    );
    assert.deepStrictEqual(
      allowed.map((d) => d.type),
      ["TaskReassigned", "PolicyEvaluated", "TaskAssigned"],
    );
    const refused = reassignFromFailed(
      running,
      REACT1,
      context({ directory, policies: noWorkers }),
      (t) => t.mayorId,
      (id, c) => (held(id) ? c.directory.get(id)! : null),
      NOW,
    );
    assert.deepStrictEqual(
      refused.map((d) => d.type),
      ["TaskReassigned", "PolicyEvaluated", "EscalationRaised"],
    );
    const [moved] = ofType(refused, "TaskReassigned");
    assert.deepStrictEqual([moved!.toAgentId, moved!.toTier, moved!.attempt], [M_FE, "MAYOR", 2]);
    const [raised] = ofType(refused, "EscalationRaised");
    assert.deepStrictEqual(
      [raised!.escalationId, raised!.kind, raised!.toAgentId],
      [`esc-policy-g1-ui-2-${M_FE}`, "POLICY_VIOLATION", GOV_FE],
    );
    // The task waits at the mayor; its next dispatch does not judge the refused attempt again.
    const after = stateOf([
      created("g1", UI),
      assigned("g1", UI, GOV_FE),
      assigned("g1", UI, M_FE),
      assigned("g1", UI, REACT1),
      started("g1", "ui", REACT1),
      failure,
      ...refused,
    ]);
    assert.deepStrictEqual(
      dispatchToWorkers(after, DIRECTORY.get(M_FE)!, context({ directory, policies: noWorkers })),
      [],
    );
  });
});
