/**
 * ESCALATION policies, decider by decider: per-tier retry limits, the routes of an escalation
 * (redeliver, split, fail the goal), the sub-master's path, and amendments never applied backwards.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload, PolicyCategory } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { Decision } from "../../processors/domain/decider.js";
import { handleFailure } from "../../processors/domain/dispatch.js";
import { escalationRulesProblems, isSplit } from "../../processors/domain/policies/escalation-policy.js";
import { governor } from "../../processors/domain/governor.js";
import { mayor } from "../../processors/domain/mayor.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { policy } from "../../processors/domain/policy.js";
import { president } from "../../processors/domain/president.js";
import {
  asEvent,
  assigned,
  completed,
  context,
  created,
  ev,
  failed,
  NOW,
  ofType,
  retried,
  spec,
  stateOf,
  submitGoal,
  task,
  DIRECTORY,
  type Given,
} from "../support/decider-spec.js";

const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
const GOV = "aamas-governor-backend";
const M1 = "aamas-mayor-backend-1";
const M2 = "aamas-mayor-backend-2";
const API1 = "aamas-worker-backend-api-1";
const API2 = "aamas-worker-backend-api-2";
const SUB = "dgm-submaster-backend";
const DAPI1 = "dgm-worker-backend-api-1";
const API = task("api", "backend", "api");

function defined(policyId: string, rules: object, overrides: Partial<Payload<"PolicyDefined">> = {}): PolityEvent {
  return ev("PolicyDefined", {
    policyId,
    version: 1,
    name: policyId,
    category: "ESCALATION" as PolicyCategory,
    description: `${policyId} rules`,
    rules: JSON.stringify(rules),
    appliesToTiers: [],
    domains: [],
    precedence: 100,
    effectiveFrom: NOW,
    commandId: null,
    ...overrides,
  });
}

function amended(policyId: string, version: number, rules: object, effectiveFrom: Date): PolityEvent {
  return ev("PolicyAmended", {
    policyId,
    version,
    previousVersion: version - 1,
    category: "ESCALATION",
    description: `${policyId} rules`,
    rules: JSON.stringify(rules),
    appliesToTiers: [],
    domains: [],
    precedence: 100,
    rationale: "stricter",
    effectiveFrom,
    commandId: null,
  });
}

function bookOf(...events: PolityEvent[]): PolicyBook {
  const book = new PolicyBook();
  for (const e of events) book.apply(e);
  return book;
}

const asInput = (d: Given, occurredAt = NOW): PolityEvent => ("payload" in d ? asEvent(d, { occurredAt }) : d);

/** api with mayor 1, `n` attempts failed (maxAttempts `max`); `last` is the last failure. */
function failures(n: number, max = 5, occurredAt = NOW) {
  const history: Given[] = [
    created("g1", API, { maxAttempts: max }),
    assigned("g1", API, GOV),
    assigned("g1", API, M1),
  ];
  let last!: PolityEvent;
  for (let attempt = 1; attempt <= n; attempt++) {
    const w = attempt % 2 === 1 ? API1 : API2;
    if (attempt > 1) history.push(last, retried("g1", "api", attempt, [API1]));
    history.push(assigned("g1", API, w, { attempt }));
    last = failed("g1", "api", w, { attempt, reason: `crash ${attempt}` });
  }
  const { envelope: _envelope, ...payload } = last.value as Payload<"TaskFailed"> & { envelope: unknown };
  return { history, last: ev("TaskFailed", payload, { occurredAt }) };
}

/** The mayor's escalation after `n` failed attempts, under `book`. */
function mayorEscalation(n: number, book: PolicyBook, max = 5, occurredAt = NOW) {
  const { history, last } = failures(n, max, occurredAt);
  const decisions = spec(mayor, context({ policies: book }))
    .given(history)
    .when(last).decisions;
  const raised = decisions.find((d) => d.type === "EscalationRaised")!;
  return { history: [...history, last], raised, decisions };
}

describe("escalation policy rules", () => {
  it("accepts the known rules and names every problem", () => {
    assert.deepEqual(
      escalationRulesProblems(
        JSON.stringify({
          workerRetries: 2,
          domainRetries: 1,
          resolution: { RETRIES_EXHAUSTED: "SPLIT", TASK_FAILURE: "FAIL_GOAL" },
          splitInto: 3,
        }),
      ),
      [],
    );
    assert.deepEqual(escalationRulesProblems(JSON.stringify({ resolution: "REASSIGN" })), []);
    assert.deepEqual(escalationRulesProblems(JSON.stringify({ workerRetries: 0, resolution: "PANIC", retries: 1 })), [
      'rule "workerRetries" must be a whole number from 1 to 100, got 0',
      'rule "resolution" must be one of RETRY_ELSEWHERE, REASSIGN, SPLIT, FAIL_GOAL, or an object of escalation kinds (RETRIES_EXHAUSTED, TASK_FAILURE, TIMEOUT, AGENT_FAILURE, RESOURCE_DENIED, CONFLICT_UNRESOLVED, POLICY_VIOLATION, DEADLINE_AT_RISK) to one of them, got "PANIC"',
      'unknown rule "retries"; escalation rules are workerRetries, domainRetries, resolution, splitInto',
    ]);
    assert.equal(escalationRulesProblems(JSON.stringify({ resolution: { OOPS: "SPLIT" } })).length, 1);
    assert.equal(escalationRulesProblems(JSON.stringify({ splitInto: 1 })).length, 1);
    assert.deepEqual(escalationRulesProblems("[]"), ["rules must be a JSON object"]);
  });

  it("the policy engine refuses an ESCALATION policy with unknown rules", () => {
    const define = (rules: object) =>
      ev("DefinePolicy", {
        policyId: "esc",
        name: "esc",
        category: "ESCALATION",
        description: "d",
        rules: JSON.stringify(rules),
        appliesToTiers: [],
        domains: [],
        precedence: 1,
        effectiveFrom: null,
      });
    const [refusal] = spec(policy)
      .when(define({ splitInto: 2, hops: 3 }))
      .thenTypes(["PolicyEvaluated"]);
    assert.match((refusal!.payload as Payload<"PolicyEvaluated">).reasons[0]!, /unknown rule "hops"/);
    spec(policy)
      .when(define({ resolution: "SPLIT", splitInto: 2 }))
      .thenTypes(["PolicyDefined"]);
  });
});

describe("escalation policy: per-tier retry limits", () => {
  it("the mayor escalates after the policy's workerRetries, not the task's maxAttempts, and says which policy decided", () => {
    const book = bookOf(defined("tight", { workerRetries: 2 }, { appliesToTiers: ["MAYOR"] }));
    const { history, last } = failures(1);
    spec(mayor, context({ policies: book }))
      .given(history)
      .when(last)
      .then([{ type: "TaskRetried", attempt: 2, maxAttempts: 2 }]);
    const { decisions } = mayorEscalation(2, book);
    assert.deepEqual(
      decisions.map((d) => d.type),
      ["EscalationRaised", "PolicyEvaluated"],
    );
    const evaluated = ofType(decisions, "PolicyEvaluated")[0]!;
    assert.equal(evaluated.category, "ESCALATION");
    assert.equal(evaluated.policyId, "tight");
    assert.equal(evaluated.policyVersion, 1);
    assert.match(evaluated.reasons[0]!, /policy "tight" v1 \(workerRetries\): 2 attempts per delivery/);
    assert.match(ofType(decisions, "EscalationRaised")[0]!.reason, /failed 2 of 2 attempts/);
  });

  it("without an ESCALATION policy nothing changes: 5 attempts, and the mayor writes no evaluation", () => {
    const { history, last } = failures(2);
    spec(mayor)
      .given(history)
      .when(last)
      .then([{ type: "TaskRetried", attempt: 3, maxAttempts: 5 }]);
  });

  it("escalation reaching the top under a policy: domainRetries 1 sends it up after one delivery, and the top fails the goal", () => {
    const book = bookOf(defined("one-delivery", { domainRetries: 1 }, { appliesToTiers: ["GOVERNOR"] }));
    const goal = spec(president).when(submitGoal({ tasks: [API] })).decisions;
    const { history, raised } = mayorEscalation(5, book);
    const given = [...goal, ...history.slice(1)];
    const decisions = spec(governor, context({ policies: book }))
      .given(given)
      .when(asInput(raised))
      .then([
        {
          type: "EscalationRaised",
          fromAgentId: GOV,
          toAgentId: "aamas-president",
          reason: "Governor of backend cannot settle it: 1 of 1 deliveries in backend failed",
        },
        {
          type: "EscalationResolved",
          outcome: "ESCALATED_FURTHER",
          consultedPolicies: [{ policyId: "one-delivery", version: 1 }],
        },
        { type: "PolicyEvaluated", category: "ESCALATION", policyId: "one-delivery", decision: "ALLOW" },
      ]);
    assert.match(
      ofType(decisions, "PolicyEvaluated")[0]!.reasons.join(" | "),
      /domainRetries\): 1 deliveries in backend \| no delivery is left/,
    );
    spec(president)
      .given([...given, raised])
      .when(asInput(decisions[0]!))
      .thenMatches((ds) => {
        // (The president may add notifications; the failure is what matters here.)
        assert.deepEqual(ofType(ds, "GoalFailed")[0]?.failedTaskIds, ["api"]);
        assert.equal(ofType(ds, "EscalationResolved")[0]?.outcome, "FAIL_GOAL");
        assert.match(ofType(ds, "GoalFailed")[0]!.reason, /1 of 1 deliveries in backend failed/);
      });
  });

  it("FAIL_GOAL sends an escalation to the top at once, though deliveries remain", () => {
    const book = bookOf(defined("give-up", { resolution: { RETRIES_EXHAUSTED: "FAIL_GOAL" } }));
    const { history, raised } = mayorEscalation(5, book);
    spec(governor, context({ policies: book }))
      .given(history)
      .when(asInput(raised))
      .then([
        {
          type: "EscalationRaised",
          toAgentId: "aamas-president",
          reason: 'Governor of backend cannot settle it: policy "give-up" v1 (resolution) asks that the goal fail',
        },
        { type: "EscalationResolved", outcome: "ESCALATED_FURTHER" },
        { type: "PolicyEvaluated", policyId: "give-up" },
      ]);
  });

  it("REASSIGN redelivers only to another mayor, as the first attempt of the next delivery", () => {
    const book = bookOf(defined("move", { resolution: "REASSIGN", domainRetries: 2 }));
    const { history, raised } = mayorEscalation(5, book);
    spec(governor, context({ policies: book }))
      .given(history)
      .when(asInput(raised))
      .then([
        { type: "EscalationResolved", outcome: "REASSIGN", reassignedTo: M2 },
        { type: "TaskAssigned", assigneeId: M2, attempt: 6 },
        { type: "PolicyEvaluated", policyId: "move" },
      ]);
  });
});

describe("escalation policy: SPLIT", () => {
  const book = bookOf(defined("split", { resolution: { RETRIES_EXHAUSTED: "SPLIT" }, splitInto: 2 }));
  const ctx = context({ policies: book });

  function splitAtGovernor() {
    const { history, raised } = mayorEscalation(5, book);
    const decisions = spec(governor, ctx).given(history).when(asInput(raised)).decisions;
    return { given: [...history, raised], decisions };
  }

  it("the governor splits the escalated task into smaller tasks that replace it, and takes it back", () => {
    const { decisions } = splitAtGovernor();
    assert.deepEqual(
      decisions.map((d) => d.type),
      [
        "EscalationResolved",
        "PolicyEvaluated",
        "TaskCreated",
        "TaskCreated",
        "TaskAssigned",
        "TaskAssigned",
        "TaskAssigned",
      ],
    );
    const [resolved] = ofType(decisions, "EscalationResolved");
    assert.equal(resolved!.outcome, "SPLIT");
    assert.deepEqual(resolved!.newTaskIds, ["api.part1", "api.part2"]);
    assert.deepEqual(resolved!.consultedPolicies, [{ policyId: "split", version: 1 }]);
    const parts = ofType(decisions, "TaskCreated");
    assert.deepEqual(
      parts.map((p) => [p.task.id, p.parentTaskId, p.task.title]),
      [
        ["api.part1", "api", "Task api (part 1 of 2)"],
        ["api.part2", "api", "Task api (part 2 of 2)"],
      ],
    );
    const assignedTo = ofType(decisions, "TaskAssigned").map((a) => [a.taskId, a.assigneeId, a.attempt]);
    assert.deepEqual(assignedTo, [
      ["api", GOV, 6],
      ["api.part1", GOV, 1],
      ["api.part2", GOV, 1],
    ]);
    const [evaluated] = ofType(decisions, "PolicyEvaluated");
    assert.equal(evaluated!.policyId, "split");
    assert.match(
      evaluated!.reasons.join(" | "),
      /RETRIES_EXHAUSTED is resolved by SPLIT \| task api is split into 2 parts/,
    );
  });

  it("hands the parts to mayors, never the split task, and completes it once every part completed", () => {
    const { given, decisions } = splitAtGovernor();
    const all = [...given, ...decisions];
    spec(governor, ctx)
      .given(all.slice(0, -1))
      .when(asInput(decisions.at(-1)!))
      .thenMatches((ds) => {
        const handed = ofType(ds, "TaskAssigned").map((a) => [a.taskId, a.assigneeTier]);
        assert.deepEqual(handed, [
          ["api.part1", "MAYOR"],
          ["api.part2", "MAYOR"],
        ]);
      });
    const done1 = completed("g1", "api.part1", API1, { result: "half" });
    spec(governor, ctx)
      .given(all)
      .when(done1)
      .thenMatches((ds) => !ds.some((d) => d.type === "TaskCompleted"));
    spec(governor, ctx)
      .given([...all, done1])
      .when(completed("g1", "api.part2", API2, { result: "other half" }))
      .thenMatches((ds) => {
        const [parent] = ofType(ds, "TaskCompleted");
        assert.equal(parent?.taskId, "api");
        assert.equal(parent?.agentId, GOV);
        assert.equal(parent?.attempt, 6);
        assert.match(parent!.result, /split into 2 parts, all completed: api.part1: half; api.part2: other half/);
      });
  });

  it("a part is not split again: its escalation goes to the top", () => {
    const { given, decisions } = splitAtGovernor();
    const part = task("api.part1", "backend", "api", [], {
      title: "Task api (part 1 of 2)",
      description: "Part 1 of 2 of task api: Task api",
      inputs: { "split.of": "api", "split.part": "1/2" },
    });
    const all: Given[] = [...given, ...decisions, assigned("g1", part, M1), assigned("g1", part, API1)];
    const fail = failed("g1", "api.part1", API1, { retryable: false, reason: "bad" });
    const [raised] = spec(mayor, ctx).given(all).when(fail).decisions;
    assert.equal(raised?.type, "EscalationRaised");
    spec(governor, ctx)
      .given([...all, fail])
      .when(asInput(raised!))
      .thenMatches((ds) => {
        assert.deepEqual(
          ds.map((d) => d.type),
          ["EscalationRaised", "EscalationResolved", "PolicyEvaluated"],
        );
        assert.match(ofType(ds, "EscalationRaised")[0]!.reason, /the failure cannot be retried/);
      });
  });
});

describe("escalation policy: amended mid-goal", () => {
  it("an escalation raised before the amendment follows version 1, one raised after it version 2, whenever decided", () => {
    const book = bookOf(
      defined("esc", { resolution: "RETRY_ELSEWHERE", domainRetries: 3 }),
      amended("esc", 2, { resolution: "FAIL_GOAL" }, at(10)),
    );
    const late = context({ policies: book, now: at(30) });
    const before = mayorEscalation(5, book, 5, at(5));
    spec(governor, late)
      .given(before.history)
      .when(asInput(before.raised, at(5)))
      .then([
        { type: "EscalationResolved", outcome: "REASSIGN", consultedPolicies: [{ policyId: "esc", version: 1 }] },
        { type: "TaskAssigned", attempt: 6 },
        { type: "PolicyEvaluated", policyVersion: 1 },
      ]);
    const after = mayorEscalation(5, book, 5, at(20));
    spec(governor, late)
      .given(after.history)
      .when(asInput(after.raised, at(20)))
      .then([
        { type: "EscalationRaised", toAgentId: "aamas-president" },
        {
          type: "EscalationResolved",
          outcome: "ESCALATED_FURTHER",
          consultedPolicies: [{ policyId: "esc", version: 2 }],
        },
        { type: "PolicyEvaluated", policyVersion: 2 },
      ]);
  });
});

describe("escalation policy: the dgm sub-master", () => {
  const dApi = task("api", "backend", "api");
  const start: Given[] = [
    created("g1", dApi, { maxAttempts: 5 }),
    assigned("g1", dApi, SUB),
    assigned("g1", dApi, DAPI1),
  ];

  it("retries under the policy's workerRetries and, instead of escalating to the master, splits the task", () => {
    const book = bookOf(defined("dgm", { workerRetries: 1, domainRetries: 1, resolution: "SPLIT" }));
    const fail = failed("g1", "api", DAPI1);
    const decisions: Decision[] = spec(governor, context({ policies: book }))
      .given(start)
      .when(fail).decisions;
    assert.deepEqual(
      decisions.map((d) => d.type),
      ["PolicyEvaluated", "TaskCreated", "TaskCreated", "TaskAssigned", "TaskAssigned", "TaskAssigned"],
    );
    const [evaluated] = ofType(decisions, "PolicyEvaluated");
    assert.match(evaluated!.reasons.join(" | "), /workerRetries\): 1 attempts per delivery/);
    assert.deepEqual(
      ofType(decisions, "TaskCreated").map((c) => [c.task.id, c.parentTaskId, c.maxAttempts]),
      [
        ["api.part1", "api", 1],
        ["api.part2", "api", 1],
      ],
    );
  });

  it("delivers again under domainRetries, then escalates to the master with the policy named", () => {
    const book = bookOf(defined("dgm", { workerRetries: 1, domainRetries: 2 }));
    const first = failed("g1", "api", DAPI1);
    spec(governor, context({ policies: book }))
      .given(start)
      .when(first)
      .then([{ type: "TaskRetried", attempt: 2 }]);
    const second = failed("g1", "api", "dgm-worker-backend-api-2", { attempt: 2 });
    spec(governor, context({ policies: book }))
      .given([
        ...start,
        first,
        retried("g1", "api", 2, [DAPI1]),
        assigned("g1", dApi, "dgm-worker-backend-api-2", { attempt: 2 }),
      ])
      .when(second)
      .then([
        { type: "EscalationRaised", fromAgentId: SUB, toAgentId: "dgm-master" },
        { type: "PolicyEvaluated", policyId: "dgm" },
      ]);
  });
});

describe("escalation policy: explicit delivery limits", () => {
  it("handleFailure judges a failed attempt by the limits it is given, not the task's maxAttempts", () => {
    const { history, last } = failures(2, 5);
    const state = stateOf([...history, last]);
    const mayorOne = DIRECTORY.get(M1)!;
    const ctx = context();
    // The task allows 5 attempts per delivery; limits of 2 escalate after the second.
    assert.deepEqual(
      handleFailure(state, mayorOne, "g1", "api", ctx, { perDelivery: 5, deliveries: 3 }).map((d) => d.type),
      ["TaskRetried"],
    );
    const [raised] = ofType(
      handleFailure(state, mayorOne, "g1", "api", ctx, { perDelivery: 2, deliveries: 3 }),
      "EscalationRaised",
    );
    assert.match(raised!.reason, /failed 2 of 2 attempts/);
    // The state is not touched: its task keeps its own maxAttempts.
    assert.equal(state.tasks.get("g1/api")!.maxAttempts, 5);
    // A retry under a limit names that limit.
    const [retry] = ofType(
      handleFailure(stateOf(failures(1, 5).history.concat(failures(1, 5).last)), mayorOne, "g1", "api", ctx, {
        perDelivery: 3,
        deliveries: 1,
      }),
      "TaskRetried",
    );
    assert.equal(retry!.maxAttempts, 3);
  });
});

describe("escalation policy: parts of a split in the state", () => {
  it("a part is known by its TaskCreated's parentTaskId, not by its inputs", () => {
    const parent = task("api", "backend", "api");
    // A task whose inputs merely look like a part's is no part.
    const lookalike = task("api.part1", "backend", "api", [], { inputs: { "split.of": "api", "split.part": "1/2" } });
    const unsplit = stateOf([created("g1", parent), created("g1", lookalike)]);
    assert.equal(unsplit.tasks.get("g1/api.part1")!.parentTaskId, null);
    assert.equal(isSplit(unsplit, unsplit.tasks.get("g1/api")!), false);
    // A part with no split inputs at all is a part.
    const part = task("api.part1", "backend", "api");
    const split = stateOf([created("g1", parent), created("g1", part, { parentTaskId: "api" })]);
    assert.equal(split.tasks.get("g1/api.part1")!.parentTaskId, "api");
    assert.equal(isSplit(split, split.tasks.get("g1/api")!), true);
  });
});

describe("escalation policy: at the top", () => {
  const PRES = "aamas-president";
  /** The governor passes the mayor's escalation up at once (one delivery); `top` rules apply to the president only. */
  function atTop(top: object) {
    const book = bookOf(
      defined("one-delivery", { domainRetries: 1 }, { appliesToTiers: ["GOVERNOR"] }),
      defined("top", top, { appliesToTiers: ["PRESIDENT"] }),
    );
    const ctx = context({ policies: book });
    const goal = spec(president).when(submitGoal({ tasks: [API] })).decisions;
    const { history, raised } = mayorEscalation(5, book);
    const given: Given[] = [...goal, ...history.slice(1), raised];
    const passed = spec(governor, ctx).given(given).when(asInput(raised)).decisions;
    const forwarded = passed.find((d) => d.type === "EscalationRaised")!;
    assert.equal((forwarded.payload as Payload<"EscalationRaised">).toAgentId, PRES);
    return { book, ctx, given: [...given, ...passed.filter((d) => d !== forwarded)], forwarded };
  }

  it("without a policy for the top, the goal fails and the resolution consults nothing (as before)", () => {
    const { given, forwarded } = atTop({ splitInto: 3 });
    // The top's policy sets no route: it is consulted, and says so.
    const ds = spec(president, context({ policies: bookOf() }))
      .given(given)
      .when(asInput(forwarded)).decisions;
    assert.deepEqual(ofType(ds, "EscalationResolved")[0]!.consultedPolicies, []);
    assert.deepEqual(ofType(ds, "PolicyEvaluated"), []);
  });

  it("a policy without a SPLIT route fails the goal, naming the versions consulted and why", () => {
    const { ctx, given, forwarded } = atTop({ resolution: { RETRIES_EXHAUSTED: "FAIL_GOAL" } });
    const ds = spec(president, ctx).given(given).when(asInput(forwarded)).decisions;
    assert.deepEqual(
      ds.map((d) => d.type),
      ["GoalFailed", "TaskCancelled", "EscalationResolved", "PolicyEvaluated", "NotificationBroadcast"],
    );
    const [resolved] = ofType(ds, "EscalationResolved");
    assert.equal(resolved!.outcome, "FAIL_GOAL");
    assert.deepEqual(resolved!.consultedPolicies, [{ policyId: "top", version: 1 }]);
    const [evaluated] = ofType(ds, "PolicyEvaluated");
    assert.deepEqual(
      [evaluated!.category, evaluated!.policyId, evaluated!.policyVersion, evaluated!.decision],
      ["ESCALATION", "top", 1, "ALLOW"],
    );
    assert.deepEqual(evaluated!.subject, {
      type: "EscalationRaised",
      id: forwarded.payload.escalationId,
      agentId: GOV,
    });
    assert.deepEqual(evaluated!.reasons, [
      'policy "top" v1 (resolution): RETRIES_EXHAUSTED is resolved by FAIL_GOAL',
      "the goal fails",
    ]);
  });

  it("SPLIT at the top: the parts go to the task's governor, which runs them and completes the task; the goal completes", () => {
    const { ctx, given, forwarded } = atTop({ resolution: "SPLIT", splitInto: 2 });
    const split = spec(president, ctx).given(given).when(asInput(forwarded)).decisions;
    assert.deepEqual(
      split.map((d) => d.type),
      [
        "EscalationResolved",
        "PolicyEvaluated",
        "TaskCreated",
        "TaskCreated",
        "TaskAssigned",
        "TaskAssigned",
        "TaskAssigned",
      ],
    );
    const [resolved] = ofType(split, "EscalationResolved");
    assert.deepEqual(
      [resolved!.outcome, resolved!.newTaskIds, resolved!.consultedPolicies],
      ["SPLIT", ["api.part1", "api.part2"], [{ policyId: "top", version: 1 }]],
    );
    assert.deepEqual(ofType(split, "PolicyEvaluated")[0]!.reasons, [
      'policy "top" v1 (resolution): RETRIES_EXHAUSTED is resolved by SPLIT',
      'task api is split into 2 parts (policy "top" v1 (splitInto)), run by Governor of backend',
    ]);
    assert.deepEqual(
      ofType(split, "TaskCreated").map((c) => [c.task.id, c.parentTaskId]),
      [
        ["api.part1", "api"],
        ["api.part2", "api"],
      ],
    );
    // Written by the president, for the governor holding the task: it takes the task back.
    assert.deepEqual(
      ofType(split, "TaskAssigned").map((a) => [a.taskId, a.assigneeId, a.assignedBy, a.attempt]),
      [
        ["api", GOV, PRES, 6],
        ["api.part1", GOV, PRES, 1],
        ["api.part2", GOV, PRES, 1],
      ],
    );
    assert.ok(split.every((d) => d.actor.id === PRES));

    // The governor hands the parts to mayors, never the split task.
    const all = [...given, forwarded, ...split];
    spec(governor, ctx)
      .given(all.slice(0, -1))
      .when(asInput(split.at(-1)!))
      .thenMatches((ds) =>
        assert.deepEqual(
          ofType(ds, "TaskAssigned").map((a) => [a.taskId, a.assigneeTier]),
          [
            ["api.part1", "MAYOR"],
            ["api.part2", "MAYOR"],
          ],
        ),
      );
    // Both parts complete: the governor completes the task, then the president the goal (the task once).
    const done1 = completed("g1", "api.part1", API1, { result: "half" });
    const done2 = completed("g1", "api.part2", API2, { result: "other half" });
    const [parent] = spec(governor, ctx)
      .given([...all, done1])
      .when(done2)
      .decisions.filter((d) => d.type === "TaskCompleted");
    assert.deepEqual([parent!.payload.taskId, parent!.actor.id], ["api", GOV]);
    const end = spec(president, ctx)
      .given([...all, done1, done2])
      .when(asInput(parent!)).decisions;
    const [goalDone] = ofType(end, "GoalCompleted");
    assert.equal(goalDone!.tasksCompleted, 3);
  });

  it("a part is not split again at the top either: the goal fails, and the evaluation says why", () => {
    const { ctx, given, forwarded } = atTop({ resolution: "SPLIT" });
    const split = spec(president, ctx).given(given).when(asInput(forwarded)).decisions;
    const part = ofType(split, "TaskCreated")[0]!.task;
    const history: Given[] = [...given, forwarded, ...split, assigned("g1", part, M1), assigned("g1", part, API1)];
    const fail = failed("g1", "api.part1", API1, { retryable: false, reason: "bad" });
    const [raised] = spec(mayor, ctx).given(history).when(fail).decisions;
    const up = spec(governor, ctx)
      .given([...history, fail])
      .when(asInput(raised!)).decisions;
    const again = up.find((d) => d.type === "EscalationRaised")!;
    const ds = spec(president, ctx)
      .given([...history, fail, raised!, ...up.filter((d) => d !== again)])
      .when(asInput(again)).decisions;
    assert.equal(ofType(ds, "GoalFailed").length, 1);
    assert.equal(ofType(ds, "TaskCreated").length, 0);
    assert.match(
      ofType(ds, "PolicyEvaluated")[0]!.reasons.join(" | "),
      /TASK_FAILURE is resolved by SPLIT \| task api.part1 cannot be split: task api.part1 is a part of task api, and a part is not split again; the goal fails/,
    );
    assert.match(ofType(ds, "GoalFailed")[0]!.reason, /the task cannot be split/);
  });
});
