import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload, PolicyCategory } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { Decision } from "../../processors/domain/decider.js";
import { governor } from "../../processors/domain/governor.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { policy } from "../../processors/domain/policy.js";
import { budgetRequestFor, requestIdOf, resources, RESOURCE_MANAGER } from "../../processors/domain/resources.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
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
  spec,
  stateOf,
  task,
} from "../support/decider-spec.js";

const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
const GOV = "aamas-governor-backend";
const M1 = "aamas-mayor-backend-1";
const api = (id: string, extra = {}) => task(id, "backend", "api", [], extra);

function defined(
  policyId: string,
  category: PolicyCategory,
  rules: object,
  overrides: Partial<Payload<"PolicyDefined">> = {},
): PolityEvent {
  return ev(
    "PolicyDefined",
    {
      policyId,
      version: 1,
      name: policyId,
      category,
      description: `${policyId} rules`,
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: NOW,
      commandId: null,
      ...overrides,
    },
    { aggregate: { type: "POLICY", id: policyId, version: 1 } },
  );
}

function amended(policyId: string, version: number, rules: object, effectiveFrom: Date): PolityEvent {
  return ev(
    "PolicyAmended",
    {
      policyId,
      version,
      previousVersion: version - 1,
      category: "RESOURCE_ALLOCATION",
      description: `${policyId} rules`,
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      rationale: "tighter",
      effectiveFrom,
      commandId: null,
    },
    { aggregate: { type: "POLICY", id: policyId, version } },
  );
}

function bookOf(...events: PolityEvent[]): PolicyBook {
  const book = new PolicyBook();
  for (const e of events) book.apply(e);
  return book;
}

const BUDGET_POLICY = defined("budgets", "RESOURCE_ALLOCATION", { taskBudget: "1.0000", maxTaskBudget: "5.0000" });

function goal(budget: string | null, goalId = "g1"): PolityEvent {
  return ev("GoalSubmitted", {
    goalId,
    kind: "GOAL",
    title: "Shop",
    description: "An online shop",
    priority: 5,
    constraints: {},
    deadline: null,
    domainHints: [],
    topology: "aamas",
    tasks: null,
    budget,
    commandId: `cmd-${goalId}`,
  });
}

function request(taskId: string, amount = "1.0000", occurredAt = NOW): PolityEvent {
  return ev(
    "ResourceRequested",
    {
      requestId: requestIdOf("g1", taskId),
      goalId: "g1",
      taskId,
      requesterId: GOV,
      requesterTier: "GOVERNOR",
      kind: "BUDGET",
      amount,
      unit: "billing-currency",
      durationMs: null,
      priority: 5,
      justification: "test",
    },
    { occurredAt, actor: { id: GOV, tier: "GOVERNOR" } },
  );
}

/** The resource manager's answer to `request`, as the event it writes. */
function answered(given: PolityEvent[], req: PolityEvent, book: PolicyBook): PolityEvent[] {
  return spec(resources, context({ policies: book }))
    .given(given)
    .when(req)
    .decisions.map((d: Decision) => asEvent(d));
}

/** A task known, requested and allocated. */
function allocatedTask(taskId: string, book: PolicyBook, before: PolityEvent[], amount = "1.0000"): PolityEvent[] {
  const req = request(taskId, amount);
  const events = [created("g1", api(taskId)), req];
  return [...events, ...answered([...before, ...events.slice(0, 1)], req, book)];
}

describe("resource manager: budget allocation", () => {
  const book = bookOf(BUDGET_POLICY);

  it("allocates a task's budget while the goal's budget covers it, and records the evaluation", () => {
    spec(resources, context({ policies: book }))
      .given([goal("3.0000"), created("g1", api("t1"))])
      .when(request("t1"))
      .then([
        {
          type: "ResourceAllocated",
          requestId: "res-g1-t1",
          taskId: "t1",
          requesterId: GOV,
          requestedAmount: "1.0000",
          grantedAmount: "1.0000",
          consultedPolicies: [{ policyId: "budgets", version: 1 }],
        },
        {
          type: "PolicyEvaluated",
          category: "RESOURCE_ALLOCATION",
          decision: "ALLOW",
          policyId: "budgets",
          subject: { type: "ResourceRequested", id: "res-g1-t1", agentId: GOV },
        },
      ]);
  });

  it("denies a request once the goal's budget is exhausted, saying how much is left", () => {
    let log: PolityEvent[] = [goal("2.0000")];
    log = [...log, ...allocatedTask("t1", book, log)];
    log = [...log, ...allocatedTask("t2", book, log)];
    const [denied, evaluated] = spec(resources, context({ policies: book }))
      .given([...log, created("g1", api("t3"))])
      .when(request("t3"))
      .then([
        { type: "ResourceDenied", requestId: "res-g1-t3", availableAmount: "0.0000" },
        { type: "PolicyEvaluated", decision: "DENY" },
      ]);
    const reasons = (denied!.payload as Payload<"ResourceDenied">).reasons;
    assert.match(reasons[0]!, /budget exhausted: goal g1 has a budget of 2.0000, 2.0000 is committed and 0.0000 left/);
    assert.deepEqual((evaluated!.payload as Payload<"PolicyEvaluated">).reasons, reasons);
    assert.equal(denied!.actor, RESOURCE_MANAGER);
  });

  it("denies exactly at the edge: what is left must cover the whole request", () => {
    let log: PolityEvent[] = [goal("1.5000")];
    log = [...log, ...allocatedTask("t1", book, log)];
    spec(resources, context({ policies: book }))
      .given([...log, created("g1", api("t2"))])
      .when(request("t2", "0.5001"))
      .then([{ type: "ResourceDenied", availableAmount: "0.5000" }, { type: "PolicyEvaluated" }]);
    spec(resources, context({ policies: book }))
      .given([...log, created("g1", api("t2"))])
      .when(request("t2", "0.5000"))
      .then([{ type: "ResourceAllocated", grantedAmount: "0.5000" }, { type: "PolicyEvaluated" }]);
  });

  it("releases what a completed task did not spend, and all of a cancelled task's allocation", () => {
    let log: PolityEvent[] = [goal("2.0000")];
    log = [...log, ...allocatedTask("t1", book, log)];
    log = [...log, ...allocatedTask("t2", book, log)];
    // Nothing left now; t1 completes having spent 0.2500, t2 is cancelled.
    const done = completed("g1", "t1", "w", { cost: "0.2500" });
    spec(resources, context({ policies: book }))
      .given([...log, done, created("g1", api("t3"))])
      .when(request("t3", "0.7500"))
      .then([{ type: "ResourceAllocated" }, { type: "PolicyEvaluated" }]);
    const cancelled = ev("TaskCancelled", {
      goalId: "g1",
      taskId: "t2",
      cause: "MANUAL",
      reason: "not needed",
      previousStatus: "ASSIGNED",
      agentId: null,
    });
    spec(resources, context({ policies: book }))
      .given([...log, done, cancelled, created("g1", api("t3"))])
      .when(request("t3", "1.7500"))
      .then([{ type: "ResourceAllocated", grantedAmount: "1.7500" }, { type: "PolicyEvaluated" }]);
  });

  it("answers a request once", () => {
    const log: PolityEvent[] = [goal("2.0000")];
    const events = allocatedTask("t1", book, log);
    spec(resources, context({ policies: book }))
      .given([...log, ...events])
      .when(events[1]!)
      .thenNothing();
  });

  it("without a goal budget, allocates under the policy's per-task maximum only", () => {
    spec(resources, context({ policies: book }))
      .given([goal(null), created("g1", api("t1"))])
      .when(request("t1", "6.0000"))
      .thenMatches((ds) => {
        const [denied] = ofType(ds, "ResourceDenied");
        assert.match(
          denied!.reasons[0]!,
          /policy "budgets" v1 \(maxTaskBudget\): task t1 asks 6.0000 .* maximum 5.0000/,
        );
        assert.equal(denied!.availableAmount, null);
      });
    spec(resources, context({ policies: book }))
      .given([goal(null), created("g1", api("t1"))])
      .when(request("t1", "4.0000"))
      .thenTypes(["ResourceAllocated", "PolicyEvaluated"]);
  });

  it("takes a policy's default budget for a goal submitted without one", () => {
    const defaults = bookOf(defined("budgets", "RESOURCE_ALLOCATION", { defaultGoalBudget: "0.5000" }));
    spec(resources, context({ policies: defaults }))
      .given([goal(null), created("g1", api("t1"))])
      .when(request("t1"))
      .thenMatches((ds) => {
        assert.match(ofType(ds, "ResourceDenied")[0]!.reasons[0]!, /default of policy "budgets" v1/);
      });
  });

  it("allocates with no policy and no budget, writing no evaluation", () => {
    spec(resources)
      .given([goal(null), created("g1", api("t1"))])
      .when(request("t1"))
      .thenTypes(["ResourceAllocated"]);
  });

  it("applies an amendment to requests made after it, never to earlier ones", () => {
    const amendedBook = bookOf(BUDGET_POLICY, amended("budgets", 2, { maxTaskBudget: "0.5000" }, at(10)));
    const given = [goal("10.0000"), created("g1", api("t1")), created("g1", api("t2"))];
    // Decided late (after the amendment), a request made before it is still judged by version 1.
    spec(resources, context({ policies: amendedBook, now: at(20) }))
      .given(given)
      .when(request("t1", "1.0000", at(5)))
      .then([
        { type: "ResourceAllocated", consultedPolicies: [{ policyId: "budgets", version: 1 }] },
        { type: "PolicyEvaluated", decision: "ALLOW", policyVersion: 1 },
      ]);
    spec(resources, context({ policies: amendedBook, now: at(20) }))
      .given(given)
      .when(request("t2", "1.0000", at(15)))
      .then([
        { type: "ResourceDenied", consultedPolicies: [{ policyId: "budgets", version: 2 }] },
        { type: "PolicyEvaluated", decision: "DENY", policyVersion: 2 },
      ]);
  });

  it("keeps API quotas per goal", () => {
    const quotas = bookOf(defined("quotas", "RESOURCE_ALLOCATION", { quotas: { API_QUOTA: "100" } }));
    const apiRequest = (id: string, amount: string) =>
      ev("ResourceRequested", {
        requestId: id,
        goalId: "g1",
        taskId: null,
        requesterId: "aamas-worker-backend-api-1",
        requesterTier: "WORKER",
        kind: "API_QUOTA",
        amount,
        unit: "calls",
        durationMs: null,
        priority: 5,
        justification: "search API",
      });
    const first = apiRequest("q1", "80");
    const log = [goal(null), first, ...answered([goal(null)], first, quotas)];
    spec(resources, context({ policies: quotas }))
      .given(log)
      .when(apiRequest("q2", "30"))
      .thenMatches((ds) => {
        const [denied] = ofType(ds, "ResourceDenied");
        assert.equal(denied?.availableAmount, "20.0000");
        assert.match(denied!.reasons[0]!, /policy "quotas" v1 \(quotas\): goal g1 may use 100 of API_QUOTA, 80.0000/);
      });
  });
});

describe("API quota: counts real model calls", () => {
  const book = bookOf(defined("calls", "RESOURCE_ALLOCATION", { quotas: { API_QUOTA: "2" } }));
  const usage = (calls: number) => ({
    model: "embedded:tiny.gguf",
    tokensIn: 10,
    tokensOut: 5,
    calls,
    latencyMs: 3,
    promptDigest: null,
    answerDigest: null,
  });
  const quotaRequest = (taskId: string) =>
    ev("ResourceRequested", {
      requestId: requestIdOf("g1", taskId, "API_QUOTA"),
      goalId: "g1",
      taskId,
      requesterId: GOV,
      requesterTier: "GOVERNOR",
      kind: "API_QUOTA",
      amount: "1.0000",
      unit: "calls",
      durationMs: null,
      priority: 5,
      justification: "one model call",
    });
  /** t1 reserved one call, was granted it, and completed after the model calls given. */
  const doneWith = (calls: number): PolityEvent[] => {
    const before = [goal(null), created("g1", api("t1"))];
    const granted = answered(before, quotaRequest("t1"), book);
    return [
      ...before,
      quotaRequest("t1"),
      ...granted,
      assigned("g1", api("t1"), "aamas-worker-backend-api-1"),
      completed("g1", "t1", "aamas-worker-backend-api-1", { usage: usage(calls) }),
      created("g1", api("t2")),
    ];
  };

  it("a governor reserves one call per task where a policy sets quotas.API_QUOTA", () => {
    const decisions = spec(governor, context({ policies: book }))
      .given([created("g1", api("t1"))])
      .when(assigned("g1", api("t1"), GOV)).decisions;
    const [call] = ofType(decisions, "ResourceRequested").filter((r) => r.kind === "API_QUOTA");
    assert.equal(call?.amount, "1.0000");
    assert.equal(call?.unit, "calls");
  });

  it("a completed task holds the calls its model made: two calls use up a quota of two", () => {
    spec(resources, context({ policies: book }))
      .given(doneWith(2))
      .when(quotaRequest("t2"))
      .thenMatches((ds) => {
        const [denied] = ofType(ds, "ResourceDenied");
        assert.match(denied?.reasons[0] ?? "", /may use 2 of API_QUOTA, 2.0000 is granted/);
      });
  });

  it("a task no model did releases its reservation", () => {
    spec(resources, context({ policies: book }))
      .given(doneWith(0))
      .when(quotaRequest("t2"))
      .thenMatches((ds) => ofType(ds, "ResourceAllocated").length === 1);
  });
});

describe("governor: waits for its tasks' budget", () => {
  const book = bookOf(BUDGET_POLICY);
  const ctx = context({ policies: book });

  it("asks for a task's budget before handing it to a mayor when a resource policy applies", () => {
    spec(governor, ctx)
      .given([created("g1", api("t1"))])
      .when(assigned("g1", api("t1"), GOV))
      .then([
        {
          type: "ResourceRequested",
          requestId: "res-g1-t1",
          taskId: "t1",
          requesterId: GOV,
          requesterTier: "GOVERNOR",
          kind: "BUDGET",
          amount: "1.0000",
        },
      ]);
  });

  it("asks effort-hours times the policy's rate when the task has an estimate", () => {
    const rated = bookOf(defined("rate", "RESOURCE_ALLOCATION", { costPerEffortHour: "2.0000" }));
    const t = api("t1", { estimatedEffortMs: 90 * 60_000 });
    const state = stateOf([created("g1", t), assigned("g1", t, GOV)]);
    const req = budgetRequestFor(state.tasks.get(taskKey("g1", "t1"))!, { agentId: GOV, tier: "GOVERNOR" }, rated);
    assert.equal((req?.payload as Payload<"ResourceRequested">).amount, "3.0000");
  });

  it("dispatches at once when no resource policy applies (the flow without policies)", () => {
    spec(governor)
      .given([created("g1", api("t1"))])
      .when(assigned("g1", api("t1"), GOV))
      .thenTypes(["TaskAssigned"]);
    const frontendOnly = bookOf(
      defined("fe", "RESOURCE_ALLOCATION", { taskBudget: "1.0000" }, { domains: ["frontend"] }),
    );
    spec(governor, context({ policies: frontendOnly }))
      .given([created("g1", api("t1"))])
      .when(assigned("g1", api("t1"), GOV))
      .thenTypes(["TaskAssigned"]);
  });

  it("hands the task to a mayor once its budget is allocated", () => {
    const given = [created("g1", api("t1")), assigned("g1", api("t1"), GOV), request("t1")];
    const allocated = answered([goal("5.0000"), ...given], request("t1"), book)[0]!;
    spec(governor, ctx)
      .given(given)
      .when(allocated)
      .then([{ type: "TaskAssigned", taskId: "t1", assigneeTier: "MAYOR", assigneeId: M1 }]);
  });

  it("holds a task whose request is unanswered while others go out", () => {
    spec(governor, ctx)
      .given([created("g1", api("t1")), assigned("g1", api("t1"), GOV), request("t1"), created("g1", api("t2"))])
      .when(assigned("g1", api("t2"), GOV))
      .then([{ type: "ResourceRequested", taskId: "t2" }]);
  });

  it("escalates a denied budget to the president with the denial's reasons", () => {
    const given = [goal("0.5000"), created("g1", api("t1")), assigned("g1", api("t1"), GOV), request("t1")];
    const [denied] = answered(given, request("t1"), book);
    assert.equal(denied?.type, "ResourceDenied");
    const [raised] = spec(governor, ctx)
      .given(given.slice(1))
      .when(denied!)
      .then([
        {
          type: "EscalationRaised",
          kind: "RESOURCE_DENIED",
          taskId: "t1",
          fromAgentId: GOV,
          toAgentId: "aamas-president",
          toTier: "PRESIDENT",
        },
      ]);
    assert.match(
      (raised!.payload as Payload<"EscalationRaised">).reason,
      /budget of 1.0000 was denied: budget exhausted/,
    );
  });
});

describe("resource manager: performance SLAs", () => {
  const sla = bookOf(defined("sla", "PERFORMANCE", { maxTaskDurationMs: 50, minSuccessRate: 0.5, minSamples: 2 }));
  const given = [goal(null), created("g1", api("t1")), created("g1", api("t2"))];

  it("alerts when an attempt takes longer than the SLA allows", () => {
    const [alert] = spec(resources, context({ policies: sla }))
      .given(given)
      .when(completed("g1", "t1", "aamas-worker-backend-api-1", { durationMs: 120 }))
      .then([
        {
          type: "PerformanceAlert",
          goalId: "g1",
          agentId: "aamas-worker-backend-api-1",
          tier: "WORKER",
          domain: "backend",
          metric: "task_duration_ms",
          observed: 120,
          threshold: 50,
          severity: "WARNING",
          policyId: "sla",
        },
        {
          type: "PolicyEvaluated",
          category: "PERFORMANCE",
          decision: "WARN",
          policyId: "sla",
          consultedPolicies: [{ policyId: "sla", version: 1 }],
        },
      ]);
    assert.match(
      (alert!.payload as Payload<"PerformanceAlert">).message,
      /task t1 attempt 1 .* took 120 ms, more than 50 ms/,
    );
  });

  it("writes nothing for an attempt within its SLAs, and alerts once", () => {
    spec(resources, context({ policies: sla }))
      .given(given)
      .when(completed("g1", "t1", "w", { durationMs: 50 }))
      .thenNothing();
    const slow = completed("g1", "t1", "w", { durationMs: 120 });
    const first = spec(resources, context({ policies: sla }))
      .given(given)
      .when(slow).decisions;
    spec(resources, context({ policies: sla }))
      .given([...given, slow, ...first])
      .when(slow)
      .thenNothing();
  });

  it("alerts when the goal's success rate falls below the minimum", () => {
    spec(resources, context({ policies: sla }))
      .given([...given, completed("g1", "t1", "w", { durationMs: 1 }), failed("g1", "t2", "w", { durationMs: 1 })])
      .when(failed("g1", "t2", "w", { attempt: 2, durationMs: 1 }))
      .then([
        { type: "PerformanceAlert", metric: "success_rate", threshold: 0.5, observed: 1 / 3 },
        { type: "PolicyEvaluated", decision: "WARN" },
      ]);
  });

  it("checks nothing without a performance policy", () => {
    spec(resources)
      .given(given)
      .when(completed("g1", "t1", "w", { durationMs: 1_000_000 }))
      .thenNothing();
  });
});

describe("policy engine: resource and performance rules", () => {
  const define = (category: PolicyCategory, rules: object) =>
    ev("DefinePolicy", {
      policyId: "p",
      name: "p",
      category,
      description: "d",
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 1,
      effectiveFrom: null,
    });

  it("refuses unknown or malformed rules", () => {
    const [refusal] = spec(policy)
      .when(define("RESOURCE_ALLOCATION", { maxTaskBudget: 5, budgetz: true }))
      .thenTypes(["PolicyEvaluated"]);
    assert.deepEqual((refusal!.payload as Payload<"PolicyEvaluated">).reasons, [
      'policy "p" not defined: rule "maxTaskBudget" must be a decimal string such as "5.0000", got 5',
      'policy "p" not defined: unknown rule "budgetz"; resource allocation rules are taskBudget, costPerEffortHour, maxTaskBudget, defaultGoalBudget, enforceGoalBudget, quotas, computePerTask, maxConcurrentTasks',
    ]);
    spec(policy)
      .when(define("PERFORMANCE", { minSuccessRate: 2 }))
      .thenTypes(["PolicyEvaluated"]);
    spec(policy)
      .when(define("PERFORMANCE", { maxTaskDurationMs: 1000, minSuccessRate: 0.9 }))
      .thenTypes(["PolicyDefined"]);
  });
});
