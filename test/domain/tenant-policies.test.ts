/**
 * Tenancy of policies (processors/domain/kernel/tenancy.ts, policies.ts, policy.ts): a tenant's policy
 * governs that tenant's goals only, a platform-wide one every tenant's; only the owner amends a
 * policy, and another tenant's amendment learns nothing of it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload, PolicyCategory } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { policy } from "../../processors/domain/policy.js";
import { president } from "../../processors/domain/president.js";
import { requestIdOf, resources } from "../../processors/domain/resources.js";
import { PLATFORM_TENANT } from "../../processors/domain/kernel/tenancy.js";
import { asEvent, context, created, ev, NOW, ofType, spec, submitGoal, task } from "../support/decider-spec.js";

const A = "tenant-a";
const B = "tenant-b";
const later = new Date(NOW.getTime() + 60_000);

function define(tenantId: string, policyId: string, category: PolicyCategory, rules: object): PolityEvent {
  return ev(
    "DefinePolicy",
    {
      policyId,
      name: policyId,
      category,
      description: `${policyId} of ${tenantId}`,
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
    },
    { tenantId, aggregate: { type: "POLICY", id: policyId, version: -1 } },
  );
}

function amend(tenantId: string, policyId: string, rules: object): PolityEvent {
  const payload: Payload<"AmendPolicy"> = {
    policyId,
    expectedVersion: 1,
    rules: JSON.stringify(rules),
    description: null,
    appliesToTiers: null,
    domains: null,
    precedence: null,
    rationale: "tighter",
    effectiveFrom: null,
  };
  return ev("AmendPolicy", payload, { tenantId, aggregate: { type: "POLICY", id: policyId, version: -1 } });
}

/** What the policy engine writes for each command in turn, with the envelope its host gives it (the command's tenant). */
function engine(commands: PolityEvent[]): PolityEvent[] {
  const out: PolityEvent[] = [];
  for (const cmd of commands) {
    const tenantId = (cmd.value as { envelope: { tenantId: string } }).envelope.tenantId;
    const decisions = spec(policy, context({ now: NOW }))
      .given(out)
      .when(cmd).decisions;
    out.push(...decisions.map((d) => asEvent(d, { tenantId })));
  }
  return out;
}

function bookOf(events: PolityEvent[]): PolicyBook {
  const book = new PolicyBook();
  for (const e of events) book.apply(e);
  return book;
}

const BUDGET = { principle: "Spend little", maxBudget: "100.0000" };
const submitted = (tenantId: string, goalId: string) =>
  submitGoal(
    { goalId, tasks: [task("api", "backend", "api")], budget: "500.0000" },
    { tenantId, occurredAt: later, correlationId: goalId },
  );

describe("tenant policies: which goals a policy governs", () => {
  const aBudget = engine([define(A, "a-budget", "CONSTITUTIONAL", BUDGET)]);
  const withPolicies = (events: PolityEvent[]) => spec(president, context({ now: later, policies: bookOf(events) }));

  it("records the defining tenant as the policy's owner, and the platform's as platform-wide", () => {
    const book = bookOf([...aBudget, ...engine([define(PLATFORM_TENANT, "charter", "CONSTITUTIONAL", BUDGET)])]);
    assert.equal(book.get("a-budget")!.tenantId, A);
    assert.equal(book.get("charter")!.tenantId, null);
    assert.deepStrictEqual(
      book
        .forTenant(B)
        .at(later)
        .map((p) => p.policyId),
      ["charter"],
    );
    assert.deepStrictEqual(
      book
        .forTenant(A)
        .at(later)
        .map((p) => p.policyId),
      ["a-budget", "charter"],
    );
  });

  it("denies tenant A's goal over A's budget policy", () => {
    const [rejected] = ofType(withPolicies(aBudget).when(submitted(A, "ga")).decisions, "GoalRejected");
    assert.ok(rejected, "A's goal is rejected");
    assert.match(rejected.reasons[0]!, /a-budget" v1 \(maxBudget\): budget 500.0000 is above the maximum 100.0000/);
  });

  it("does not let tenant A's budget policy deny (or even judge) tenant B's goal", () => {
    const decisions = withPolicies(aBudget).when(submitted(B, "gb")).decisions;
    assert.deepStrictEqual(ofType(decisions, "GoalRejected"), []);
    assert.deepStrictEqual(ofType(decisions, "PolicyEvaluated"), [], "no policy of A is consulted for B");
    assert.ok(ofType(decisions, "GoalSubmitted").length === 1);
  });

  it("applies a platform-wide policy to every tenant's goals", () => {
    const charter = engine([define(PLATFORM_TENANT, "charter", "CONSTITUTIONAL", BUDGET)]);
    for (const [tenant, goalId] of [
      [A, "ga"],
      [B, "gb"],
    ] as const) {
      const [rejected] = ofType(withPolicies(charter).when(submitted(tenant, goalId)).decisions, "GoalRejected");
      assert.match(rejected!.reasons[0]!, /charter" v1 \(maxBudget\)/, `${tenant}'s goal`);
    }
  });

  it("scopes resource policies too: A's budget denies A's task, not B's", () => {
    const budgets = engine([
      define(A, "a-budgets", "RESOURCE_ALLOCATION", { taskBudget: "1.0000", maxTaskBudget: "5.0000" }),
    ]);
    const run = (tenantId: string) => {
      const goalId = `g-${tenantId}`;
      const given = [
        ev(
          "GoalSubmitted",
          {
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
            budget: "100.0000",
            commandId: `cmd-${goalId}`,
          },
          { tenantId },
        ),
        created(goalId, task("t1", "backend", "api")),
      ];
      const request = ev(
        "ResourceRequested",
        {
          requestId: requestIdOf(goalId, "t1"),
          goalId,
          taskId: "t1",
          requesterId: "governor-backend",
          requesterTier: "GOVERNOR",
          kind: "BUDGET",
          amount: "10.0000",
          unit: "billing-currency",
          durationMs: null,
          priority: 5,
          justification: "test",
        },
        { tenantId, occurredAt: later, actor: { id: "governor-backend", tier: "GOVERNOR" } },
      );
      return spec(resources, context({ now: later, policies: bookOf(budgets) }))
        .given(given)
        .when(request).decisions;
    };
    const [denied] = ofType(run(A), "ResourceDenied");
    assert.deepStrictEqual(denied?.consultedPolicies, [{ policyId: "a-budgets", version: 1 }], "A's policy denies A's");
    assert.deepStrictEqual(ofType(run(B), "ResourceDenied"), [], "A's policy does not judge B's request");
  });
});

describe("tenant policies: who amends a policy", () => {
  const aBudget = engine([define(A, "a-budget", "CONSTITUTIONAL", BUDGET)]);
  const charter = engine([define(PLATFORM_TENANT, "charter", "CONSTITUTIONAL", BUDGET)]);
  const TIGHTER = { principle: "Spend less", maxBudget: "50.0000" };

  it("lets the owner amend its policy", () => {
    spec(policy)
      .given(aBudget)
      .when(amend(A, "a-budget", TIGHTER))
      .then([{ type: "PolicyAmended", policyId: "a-budget", version: 2 }]);
  });

  it("refuses another tenant's amendment as if the policy did not exist, revealing nothing of it", () => {
    const [refusal] = ofType(
      spec(policy)
        .given(aBudget)
        .when(amend(B, "a-budget", TIGHTER))
        .then([{ type: "PolicyEvaluated", decision: "DENY", policyVersion: 0, consultedPolicies: [] }]),
      "PolicyEvaluated",
    );
    assert.deepStrictEqual(refusal!.reasons, [
      'amendment of policy "a-budget" refused: no policy "a-budget" is defined',
    ]);
    // The same words as for a policy nobody defined.
    const [unknown] = ofType(spec(policy).when(amend(B, "a-budget", TIGHTER)).decisions, "PolicyEvaluated");
    assert.deepStrictEqual(unknown!.reasons, refusal!.reasons);
  });

  it("refuses a tenant's amendment of a platform-wide policy, and takes the platform's", () => {
    const [refusal] = ofType(
      spec(policy)
        .given(charter)
        .when(amend(A, "charter", TIGHTER))
        .then([{ type: "PolicyEvaluated", decision: "DENY" }]),
      "PolicyEvaluated",
    );
    assert.match(refusal!.reasons[0]!, /platform-wide: only a platform admin may amend it/);
    spec(policy)
      .given(charter)
      .when(amend(PLATFORM_TENANT, "charter", TIGHTER))
      .then([{ type: "PolicyAmended", policyId: "charter", version: 2 }]);
  });

  it("refuses the platform's amendment of a tenant's policy: that is the tenant's business", () => {
    spec(policy)
      .given(aBudget)
      .when(amend(PLATFORM_TENANT, "a-budget", TIGHTER))
      .then([{ type: "PolicyEvaluated", decision: "DENY", consultedPolicies: [] }]);
  });
});
