/**
 * Resources beyond the budget, decider by decider: computational units and agent capacity asked for
 * by governors and sub-masters, conflicts between two governors over one goal's limit (ruled for
 * the president), and the dgm sub-master's resource path.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload, ResourceKind } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { governor } from "../../processors/domain/governor.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { requestIdOf, resources } from "../../processors/domain/resources.js";
import {
  asEvent,
  assigned,
  completed,
  context,
  created,
  ev,
  NOW,
  ofType,
  spec,
  task,
} from "../support/decider-spec.js";

const BE = "aamas-governor-backend";
const FE = "aamas-governor-frontend";
const SUB = "dgm-submaster-backend";
const later = (ms: number) => new Date(NOW.getTime() + ms);

function defined(policyId: string, rules: object, domains: string[] = []): PolityEvent {
  return ev("PolicyDefined", {
    policyId,
    version: 1,
    name: policyId,
    category: "RESOURCE_ALLOCATION",
    description: policyId,
    rules: JSON.stringify(rules),
    appliesToTiers: [],
    domains,
    precedence: 100,
    effectiveFrom: NOW,
    commandId: null,
  });
}

const bookOf = (...events: PolityEvent[]) => {
  const book = new PolicyBook();
  for (const e of events) book.apply(e);
  return book;
};

function goal(budget: string | null, topology: "aamas" | "dgm" = "aamas"): PolityEvent {
  return ev("GoalSubmitted", {
    goalId: "g1",
    kind: "GOAL",
    title: "Shop",
    description: "An online shop",
    priority: 5,
    constraints: {},
    deadline: null,
    domainHints: [],
    topology,
    tasks: null,
    budget,
    commandId: "cmd-g1",
  });
}

function request(
  taskId: string,
  requesterId: string,
  kind: ResourceKind,
  amount: string,
  at = NOW,
  priority = 5,
): PolityEvent {
  return ev(
    "ResourceRequested",
    {
      requestId: requestIdOf("g1", taskId, kind),
      goalId: "g1",
      taskId,
      requesterId,
      requesterTier: "GOVERNOR",
      kind,
      amount,
      unit: kind === "BUDGET" ? "billing-currency" : kind === "COMPUTATIONAL" ? "cpu-seconds" : "tasks",
      durationMs: null,
      priority,
      justification: "test",
    },
    { occurredAt: at, actor: { id: requesterId, tier: "GOVERNOR" } },
  );
}

const apiTask = (id: string, priority: number | null = null) => task(id, "backend", "api", [], { priority });
const uiTask = (id: string, priority: number | null = null) => task(id, "frontend", "react", [], { priority });

describe("resource conflicts between governors", () => {
  it("budget exhausted by another governor's grant: a conflict raised and ruled for the president, the later request denied naming it", () => {
    const book = bookOf(defined("budgets", { taskBudget: "1.0000" }));
    const ctx = context({ policies: book });
    const be = request("api", BE, "BUDGET", "1.0000");
    const given = [goal("1.5000"), created("g1", apiTask("api")), created("g1", uiTask("ui")), be];
    const grant = spec(resources, ctx)
      .given(given.slice(0, 3))
      .when(be)
      .decisions.map((d) => asEvent(d));
    const decisions = spec(resources, ctx)
      .given([...given, ...grant])
      .when(request("ui", FE, "BUDGET", "1.0000", later(1000)))
      .then([
        {
          type: "ConflictRaised",
          conflictId: "conflict-res-g1-ui-vs-res-g1-api",
          kind: "RESOURCE_CONTENTION",
          partyAgentIds: [BE, FE],
          taskIds: ["api", "ui"],
          resolverTier: "PRESIDENT",
          resolverAgentId: "aamas-president",
        },
        { type: "ConflictResolved", conflictId: "conflict-res-g1-ui-vs-res-g1-api", winnerAgentId: BE },
        { type: "ResourceDenied", requestId: "res-g1-ui", requesterId: FE, availableAmount: "0.5000" },
        { type: "PolicyEvaluated", decision: "DENY" },
      ]);
    const resolved = decisions[1]!;
    assert.deepEqual(resolved.actor, { id: "aamas-president", tier: "PRESIDENT" });
    const [denied] = ofType(decisions, "ResourceDenied");
    assert.match(denied!.reasons[0]!, /budget exhausted/);
    assert.match(
      denied!.reasons[1]!,
      /conflict conflict-res-g1-ui-vs-res-g1-api \(RESOURCE_CONTENTION .*\) resolved for aamas-governor-backend/,
    );
  });

  it("a budget the same governor exhausted is a plain denial, with no conflict", () => {
    const book = bookOf(defined("budgets", { taskBudget: "1.0000" }));
    const ctx = context({ policies: book });
    const first = request("a1", BE, "BUDGET", "1.0000");
    const given = [goal("1.0000"), created("g1", apiTask("a1")), created("g1", apiTask("a2")), first];
    const grant = spec(resources, ctx)
      .given(given.slice(0, 3))
      .when(first)
      .decisions.map((d) => asEvent(d));
    spec(resources, ctx)
      .given([...given, ...grant])
      .when(request("a2", BE, "BUDGET", "1.0000"))
      .thenTypes(["ResourceDenied", "PolicyEvaluated"]);
  });

  it("computational quota: consumed by a completed task, and a second governor's request over it is a conflict", () => {
    const book = bookOf(defined("cpu", { computePerTask: "30", quotas: { COMPUTATIONAL: "50" } }));
    const ctx = context({ policies: book });
    const be = request("api", BE, "COMPUTATIONAL", "30.0000");
    const given = [goal(null), created("g1", apiTask("api")), created("g1", uiTask("ui")), be];
    const grant = spec(resources, ctx)
      .given(given.slice(0, 3))
      .when(be)
      .decisions.map((d) => asEvent(d));
    assert.equal(grant[0]!.type, "ResourceAllocated");
    spec(resources, ctx)
      .given([...given, ...grant, completed("g1", "api", "aamas-worker-backend-api-1")])
      .when(request("ui", FE, "COMPUTATIONAL", "30.0000"))
      .thenTypes(["ConflictRaised", "ConflictResolved", "ResourceDenied", "PolicyEvaluated"]);
  });

  it("capacity: a request over it waits, and a released slot goes to the more urgent governor; the other keeps waiting", () => {
    const book = bookOf(defined("cap", { maxConcurrentTasks: 1 }));
    const ctx = context({ policies: book });
    const holder = request("a0", BE, "AGENT_CAPACITY", "1.0000");
    const base = [
      goal(null),
      created("g1", apiTask("a0")),
      created("g1", apiTask("a1", 3)),
      created("g1", uiTask("u1", 8)),
      holder,
    ];
    const grant = spec(resources, ctx)
      .given(base.slice(0, 4))
      .when(holder)
      .decisions.map((d) => asEvent(d));
    assert.equal(grant[0]!.type, "ResourceAllocated");
    const beWaits = request("a1", BE, "AGENT_CAPACITY", "1.0000", later(1));
    spec(resources, ctx)
      .given([...base, ...grant])
      .when(beWaits)
      .thenNothing();
    const feWaits = request("u1", FE, "AGENT_CAPACITY", "1.0000", later(2), 8);
    spec(resources, ctx)
      .given([...base, ...grant, beWaits])
      .when(feWaits)
      .thenNothing();
    const decisions = spec(resources, ctx)
      .given([...base, ...grant, beWaits, feWaits])
      .when(completed("g1", "a0", "aamas-worker-backend-api-1"))
      .then([
        { type: "ResourceAllocated", requestId: "res-g1-u1-AGENT_CAPACITY", requesterId: FE },
        { type: "PolicyEvaluated", decision: "ALLOW" },
        { type: "ConflictRaised", kind: "RESOURCE_CONTENTION", partyAgentIds: [FE, BE] },
        { type: "ConflictResolved", winnerAgentId: FE },
      ]);
    assert.match(
      ofType(decisions, "ConflictResolved")[0]!.resolution,
      /higher priority \(8 over 3\).*waits for the next free slot/,
    );
  });
});

describe("governors ask for computational units and capacity", () => {
  it("asks for budget, computational units and a capacity slot, and hands the task down once all three are allocated", () => {
    const book = bookOf(defined("all", { computePerTask: "12.5", maxConcurrentTasks: 2 }));
    const ctx = context({ policies: book });
    const t = apiTask("t1");
    const asks = spec(governor, ctx)
      .given([created("g1", t)])
      .when(assigned("g1", t, BE))
      .then([
        { type: "ResourceRequested", kind: "BUDGET", requestId: "res-g1-t1" },
        { type: "ResourceRequested", kind: "COMPUTATIONAL", amount: "12.5000", unit: "cpu-seconds" },
        { type: "ResourceRequested", kind: "AGENT_CAPACITY", amount: "1.0000", unit: "tasks" },
      ]);
    let log: PolityEvent[] = [goal(null), created("g1", t), assigned("g1", t, BE), ...asks.map((d) => asEvent(d))];
    const grants = asks.map((a) =>
      spec(resources, ctx)
        .given(log)
        .when(asEvent(a))
        .decisions.map((d) => asEvent(d)),
    );
    // Two of three allocated: the task still waits.
    spec(governor, ctx)
      .given([...log, ...grants[0]!])
      .when(grants[1]![0]!)
      .thenNothing();
    log = [...log, ...grants[0]!, ...grants[1]!];
    spec(governor, ctx)
      .given(log)
      .when(grants[2]![0]!)
      .then([{ type: "TaskAssigned", taskId: "t1", assigneeTier: "MAYOR" }]);
  });

  it("asks for nothing beyond the budget when no quota is set for the other kinds", () => {
    const book = bookOf(defined("budget-only", { taskBudget: "1.0000" }));
    spec(governor, context({ policies: book }))
      .given([created("g1", apiTask("t1"))])
      .when(assigned("g1", apiTask("t1"), BE))
      .thenTypes(["ResourceRequested"]);
  });
});

describe("the dgm sub-master's resource path", () => {
  const book = bookOf(defined("dgm-res", { taskBudget: "2.0000", maxConcurrentTasks: 1 }));
  const ctx = context({ policies: book });
  const t = apiTask("t1");

  it("asks before dispatching to a worker, dispatches once allocated, and escalates a denial to the master", () => {
    const asks = spec(governor, ctx)
      .given([created("g1", t)])
      .when(assigned("g1", t, SUB))
      .then([
        { type: "ResourceRequested", kind: "BUDGET", requesterId: SUB, requesterTier: "SUB_MASTER", amount: "2.0000" },
        { type: "ResourceRequested", kind: "AGENT_CAPACITY", requesterId: SUB },
      ]);
    const log: PolityEvent[] = [
      goal("1.0000", "dgm"),
      created("g1", t),
      assigned("g1", t, SUB),
      ...asks.map((d) => asEvent(d)),
    ];
    const capacity = spec(resources, ctx)
      .given(log)
      .when(asEvent(asks[1]!))
      .decisions.map((d) => asEvent(d));
    const budget = spec(resources, ctx)
      .given(log)
      .when(asEvent(asks[0]!))
      .decisions.map((d) => asEvent(d));
    assert.equal(budget[0]!.type, "ResourceDenied");
    spec(governor, ctx)
      .given([...log, ...capacity])
      .when(budget[0]!)
      .then([
        {
          type: "EscalationRaised",
          kind: "RESOURCE_DENIED",
          fromAgentId: SUB,
          toAgentId: "dgm-master",
          toTier: "MASTER",
        },
      ]);

    const enough: PolityEvent[] = [goal("5.0000", "dgm"), ...log.slice(1)];
    const granted = spec(resources, ctx)
      .given(enough)
      .when(asEvent(asks[0]!))
      .decisions.map((d) => asEvent(d));
    spec(governor, ctx)
      .given([...enough, ...capacity])
      .when(granted[0]!)
      .then([{ type: "TaskAssigned", taskId: "t1", assigneeTier: "WORKER", assignedBy: SUB }]);
    assert.equal((granted[0]!.value as Payload<"ResourceAllocated">).grantedAmount, "2.0000");
  });
});
