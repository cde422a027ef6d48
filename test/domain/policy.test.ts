import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { parseConstitution } from "../../processors/domain/policies/constitution.js";
import { PolicyBook } from "../../processors/domain/policies/book.js";
import { policy, POLICY_ENGINE } from "../../processors/domain/policy.js";
import { president } from "../../processors/domain/president.js";
import { asEvent, context, ev, NOW, ofType, spec, submitGoal, task } from "../support/decider-spec.js";

const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);

function define(overrides: Partial<Payload<"DefinePolicy">> = {}, envelope = {}): PolityEvent {
  return ev(
    "DefinePolicy",
    {
      policyId: "no-weapons",
      name: "No weapons",
      category: "CONSTITUTIONAL",
      description: "Polity builds nothing that harms",
      rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["weapon"] }),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
      ...overrides,
    },
    { aggregate: { type: "POLICY", id: overrides.policyId ?? "no-weapons", version: -1 }, ...envelope },
  );
}

function amend(overrides: Partial<Payload<"AmendPolicy">> = {}, envelope = {}): PolityEvent {
  return ev(
    "AmendPolicy",
    {
      policyId: "no-weapons",
      expectedVersion: 1,
      rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["nuclear weapon"] }),
      description: null,
      appliesToTiers: null,
      domains: null,
      precedence: null,
      rationale: "water pistols are fine",
      effectiveFrom: null,
      ...overrides,
    },
    { aggregate: { type: "POLICY", id: overrides.policyId ?? "no-weapons", version: -1 }, ...envelope },
  );
}

/** The events the policy engine writes for `commands`, decided one after the other at `now`. */
function versions(commands: { cmd: PolityEvent; now: Date }[]): PolityEvent[] {
  const out: PolityEvent[] = [];
  for (const { cmd, now } of commands) {
    const decisions = spec(policy, context({ now })).given(out).when(cmd).decisions;
    out.push(...decisions.map((d) => asEvent(d, { occurredAt: now })));
  }
  return out;
}

function bookOf(events: PolityEvent[]): PolicyBook {
  const book = new PolicyBook();
  for (const e of events) book.apply(e);
  return book;
}

describe("policy engine: defining and amending", () => {
  it("defines a policy as version 1, in effect from the moment it is accepted", () => {
    const [d] = spec(policy)
      .when(define())
      .then([
        {
          type: "PolicyDefined",
          policyId: "no-weapons",
          version: 1,
          name: "No weapons",
          category: "CONSTITUTIONAL",
          precedence: 100,
          effectiveFrom: NOW,
        },
      ]);
    assert.deepStrictEqual(d!.actor, POLICY_ENGINE);
    assert.deepStrictEqual(d!.aggregate, { type: "POLICY", id: "no-weapons", version: 1 });
  });

  it("keeps a future effectiveFrom and moves a past one to now: never retroactive", () => {
    spec(policy)
      .when(define({ effectiveFrom: at(60) }))
      .then([{ type: "PolicyDefined", effectiveFrom: at(60) }]);
    spec(policy)
      .when(define({ effectiveFrom: at(-60) }))
      .then([{ type: "PolicyDefined", effectiveFrom: NOW }]);
  });

  it("refuses a second definition of the same id with a DENY evaluation", () => {
    const [refusal] = ofType(
      spec(policy)
        .given(versions([{ cmd: define(), now: NOW }]))
        .when(define({ name: "again" }))
        .then([
          {
            type: "PolicyEvaluated",
            goalId: null,
            subject: { type: "DefinePolicy", id: "no-weapons", agentId: null },
            policyId: "no-weapons",
            policyVersion: 1,
            decision: "DENY",
            consultedPolicies: [{ policyId: "no-weapons", version: 1 }],
          },
        ]),
      "PolicyEvaluated",
    );
    assert.match(refusal!.reasons[0]!, /already exists \(version 1\).*AmendPolicy/);
  });

  it("refuses constitutional rules it cannot read, naming every problem", () => {
    const [refusal] = ofType(
      spec(policy)
        .when(define({ rules: JSON.stringify({ maxPriority: 11, forbidenTerms: ["x"] }) }))
        .thenTypes(["PolicyEvaluated"]),
      "PolicyEvaluated",
    );
    assert.equal(refusal!.decision, "DENY");
    assert.equal(refusal!.policyVersion, 0);
    assert.equal(refusal!.reasons.length, 2);
    assert.match(refusal!.reasons[0]!, /maxPriority.*integer 1-10/);
    assert.match(refusal!.reasons[1]!, /unknown rule "forbidenTerms"/);
    spec(policy)
      .when(define({ rules: "[1]" }))
      .thenTypes(["PolicyEvaluated"]);
    // Every category parses its own rules: PERFORMANCE and RESOURCE_ALLOCATION in
    // domain/resources.ts (resources.test.ts), SECURITY and COMMUNICATION in domain/policies/security.ts
    // (security.test.ts), where an unknown rule is refused as here.
    spec(policy)
      .when(define({ policyId: "comms", category: "COMMUNICATION", rules: '{"contextEdges": ["SUPERIOR"]}' }))
      .thenTypes(["PolicyDefined"]);
    spec(policy)
      .when(define({ policyId: "comms", category: "COMMUNICATION", rules: '{"anything": 500}' }))
      .thenTypes(["PolicyEvaluated"]);
  });

  it("amends the version it is based on into the next one, keeping what the amendment leaves null", () => {
    spec(policy, context({ now: at(5) }))
      .given(versions([{ cmd: define(), now: NOW }]))
      .when(amend({ precedence: 200 }))
      .then([
        {
          type: "PolicyAmended",
          policyId: "no-weapons",
          version: 2,
          previousVersion: 1,
          category: "CONSTITUTIONAL",
          description: "Polity builds nothing that harms",
          rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["nuclear weapon"] }),
          precedence: 200,
          rationale: "water pistols are fine",
          effectiveFrom: at(5),
        },
      ]);
  });

  it("refuses an amendment based on a version the policy has moved on from", () => {
    const given = versions([
      { cmd: define(), now: NOW },
      { cmd: amend(), now: at(1) },
    ]);
    const [refusal] = ofType(
      spec(policy, context({ now: at(2) }))
        .given(given)
        .when(amend({ expectedVersion: 1 }))
        .then([
          {
            type: "PolicyEvaluated",
            subject: { type: "AmendPolicy", id: "no-weapons", agentId: null },
            policyVersion: 2,
            decision: "DENY",
          },
        ]),
      "PolicyEvaluated",
    );
    assert.match(refusal!.reasons[0]!, /based on version 1 but the policy is at version 2/);
    spec(policy, context({ now: at(2) }))
      .given(given)
      .when(amend({ expectedVersion: 2 }))
      .then([{ type: "PolicyAmended", version: 3, previousVersion: 2 }]);
  });

  it("refuses to amend a policy that does not exist", () => {
    const [refusal] = ofType(spec(policy).when(amend()).thenTypes(["PolicyEvaluated"]), "PolicyEvaluated");
    assert.match(refusal!.reasons[0]!, /no policy "no-weapons" is defined/);
  });

  it("answers a command delivered again only once, accepted or refused", () => {
    const defined = define();
    const amended = amend();
    const given = versions([
      { cmd: defined, now: NOW },
      { cmd: amended, now: at(1) },
    ]);
    spec(policy).given(given).when(defined).thenNothing();
    // Not refused as stale: it is the amendment that made version 2.
    spec(policy).given(given).when(amended).thenNothing();
    const stale = amend({ expectedVersion: 7 });
    const refusal = spec(policy).given(given).when(stale).thenTypes(["PolicyEvaluated"]);
    const cause = (stale.value as { envelope: { eventId: string } }).envelope.eventId;
    spec(policy)
      .given([...given, asEvent(refusal[0]!, { causationId: cause })])
      .when(stale)
      .thenNothing();
  });
});

describe("policy book", () => {
  const log = versions([
    { cmd: define(), now: NOW },
    { cmd: amend({ effectiveFrom: at(30) }), now: at(10) },
  ]);
  const book = bookOf(log);

  it("gives each policy's version in effect at a time: before, at and after an amendment", () => {
    const version = (t: Date) => book.at(t).map((v) => v.version);
    assert.deepStrictEqual(version(at(-1)), [], "nothing before the definition");
    assert.deepStrictEqual(version(NOW), [1]);
    assert.deepStrictEqual(version(at(10)), [1], "an amendment written at 10 takes effect at 30");
    assert.deepStrictEqual(version(at(29)), [1]);
    assert.deepStrictEqual(version(at(30)), [2]);
    assert.deepStrictEqual(version(at(600)), [2]);
    assert.equal(book.latest("no-weapons")!.version, 2);
  });

  it("folds a version twice or out of order without change, and filters by category", () => {
    const twice = bookOf([...log, ...log]);
    assert.deepStrictEqual(twice.get("no-weapons"), book.get("no-weapons"));
    // An amendment of a policy not yet defined is dropped (a policy's versions share a partition,
    // so they are read in order).
    const reversed = bookOf([...log].reverse());
    assert.deepStrictEqual(
      reversed.get("no-weapons")!.versions.map((v) => v.version),
      [1],
    );
    assert.deepStrictEqual(book.at(at(60), "RESOURCE_ALLOCATION"), []);
    assert.equal(book.at(at(60), "CONSTITUTIONAL").length, 1);
  });

  it("orders policies by precedence, highest first, then by id", () => {
    const many = bookOf(
      versions([
        { cmd: define({ policyId: "b", precedence: 10 }), now: NOW },
        { cmd: define({ policyId: "a", precedence: 10 }), now: NOW },
        { cmd: define({ policyId: "c", precedence: 50 }), now: NOW },
      ]),
    );
    assert.deepStrictEqual(
      many.at(NOW).map((v) => v.policyId),
      ["c", "a", "b"],
    );
  });

  it("leaves a retired policy out from its retirement on", () => {
    const retired = bookOf([
      ...log,
      ev("PolicyRetired", {
        policyId: "no-weapons",
        version: 2,
        reason: "obsolete",
        effectiveFrom: at(90),
        replacedBy: null,
      }),
    ]);
    assert.equal(retired.at(at(89)).length, 1);
    assert.equal(retired.at(at(90)).length, 0);
  });
});

describe("president: the constitution at submission", () => {
  const strict = versions([{ cmd: define(), now: NOW }]);
  const withBook = (events: PolityEvent[], now = at(1)) => spec(president, context({ now, policies: bookOf(events) }));
  const submitted = (overrides: Parameters<typeof submitGoal>[0] = {}, occurredAt = at(1)) =>
    submitGoal({ tasks: [task("api", "backend", "api")], ...overrides }, { occurredAt });

  it("rejects a goal that breaks a constitutional principle, saying which policy, version and rule", () => {
    const decisions = withBook(strict)
      .when(submitted({ title: "Build a weapon" }))
      .then([
        {
          type: "PolicyEvaluated",
          goalId: "g1",
          subject: { type: "SubmitGoal", id: "g1", agentId: null },
          category: "CONSTITUTIONAL",
          policyId: "no-weapons",
          policyVersion: 1,
          decision: "DENY",
          consultedPolicies: [{ policyId: "no-weapons", version: 1 }],
          reasons: ['policy "no-weapons" v1 (forbiddenTerms): title mentions forbidden term "weapon"'],
        },
        {
          type: "ConstitutionalViolationDetected",
          goalId: "g1",
          taskId: null,
          agentId: null,
          policyId: "no-weapons",
          policyVersion: 1,
          principle: "Polity builds no weapons",
          severity: "CRITICAL",
          enforcement: "BLOCKED",
        },
        {
          type: "GoalRejected",
          goalId: "g1",
          code: "CONSTITUTIONAL_VIOLATION",
          reasons: ['policy "no-weapons" v1 (forbiddenTerms): title mentions forbidden term "weapon"'],
          violatedPolicies: [{ policyId: "no-weapons", version: 1 }],
        },
        {
          type: "NotificationBroadcast",
          subject: "goal-rejected",
          goalId: "g1",
          message:
            'Goal "Build a weapon" (g1) rejected: CONSTITUTIONAL_VIOLATION: policy "no-weapons" v1 (forbiddenTerms): title mentions forbidden term "weapon"',
        },
      ]);
    assert.deepStrictEqual(decisions[0]!.aggregate, { type: "GOAL", id: "g1", version: -1 });
  });

  it("answers a rejected submission delivered again with nothing", () => {
    const cmd = submitted({ title: "Build a weapon" });
    const first = withBook(strict).when(cmd).decisions;
    withBook(strict).given(first).when(cmd).thenNothing();
  });

  it("accepts a compliant goal and records the ALLOW with the versions consulted", () => {
    const decisions = withBook(strict)
      .when(submitted({ title: "Build a shop" }))
      .thenMatches((ds) => ds.length > 3);
    assert.deepStrictEqual(
      decisions.slice(0, 3).map((d) => d.type),
      ["PolicyEvaluated", "GoalSubmitted", "GoalValidated"],
    );
    const [evaluated] = ofType(decisions, "PolicyEvaluated");
    assert.equal(evaluated!.decision, "ALLOW");
    assert.equal(evaluated!.policyId, "no-weapons");
    assert.deepStrictEqual(evaluated!.consultedPolicies, [{ policyId: "no-weapons", version: 1 }]);
    assert.match(evaluated!.reasons[0]!, /complies.*"no-weapons" v1/);
    const [validated] = ofType(decisions, "GoalValidated");
    assert.deepStrictEqual(validated!.consultedPolicies, [{ policyId: "no-weapons", version: 1 }]);
    assert.deepStrictEqual(validated!.warnings, []);
  });

  it("writes no evaluation when no constitutional policy is in effect", () => {
    withBook(versions([{ cmd: define({ effectiveFrom: at(60) }), now: NOW }]))
      .when(submitted({ title: "Build a weapon" }))
      .thenMatches((ds) => ds[0]!.type === "GoalSubmitted");
  });

  it("judges by the version in effect when the goal was submitted, not a later amendment", () => {
    // v1 forbids "weapon"; v2, accepted at 10 and in effect from 30, forbids only "nuclear weapon".
    const amended = versions([
      { cmd: define(), now: NOW },
      { cmd: amend({ effectiveFrom: at(30) }), now: at(10) },
    ]);
    const before = submitted({ goalId: "g-before", title: "Water weapon" }, at(20));
    const after = submitted({ goalId: "g-after", title: "Water weapon" }, at(31));
    // Decided late (now = 40) the earlier submission still answers to v1.
    const early = withBook(amended, at(40)).when(before).decisions;
    assert.deepStrictEqual(
      early.map((d) => d.type),
      ["PolicyEvaluated", "ConstitutionalViolationDetected", "GoalRejected", "NotificationBroadcast"],
    );
    assert.equal(ofType(early, "PolicyEvaluated")[0]!.policyVersion, 1);
    const late = withBook(amended, at(40)).when(after).decisions;
    const [evaluated] = ofType(late, "PolicyEvaluated");
    assert.deepStrictEqual([evaluated!.decision, evaluated!.policyVersion], ["ALLOW", 2]);
    assert.equal(late[1]!.type, "GoalSubmitted");
    // A goal already running is not judged again (its command delivered again decides nothing).
    const running = submitted({ title: "Build a shop" });
    withBook(amended, at(40)).given(withBook(strict).when(running).decisions).when(running).thenNothing();
  });

  it("applies every rule of the language, each reason naming its rule", () => {
    const rules = {
      maxPriority: 8,
      requireDeadline: true,
      maxBudget: "100.0000",
      allowedDomains: ["frontend", "backend"],
      allowedKinds: ["GOAL"],
      allowedTopologies: ["aamas"],
    };
    const book = versions([{ cmd: define({ policyId: "charter", rules: JSON.stringify(rules) }), now: NOW }]);
    const [rejected] = ofType(
      withBook(book).when(
        submitted({
          tasks: null,
          domainHints: ["backend", "testing"],
          priority: 9,
          budget: "250.5000",
          kind: "PROJECT",
        }),
      ).decisions,
      "GoalRejected",
    );
    assert.deepStrictEqual(
      rejected!.reasons.map((r) => /\((\w+)\)/.exec(r)![1]),
      ["maxPriority", "requireDeadline", "maxBudget", "allowedDomains", "allowedKinds"],
    );
    assert.match(rejected!.reasons[2]!, /budget 250.5000 is above the maximum 100.0000/);
    assert.match(rejected!.reasons[3]!, /domain\(s\) testing are not allowed/);
    // Without hints or tasks the goal would use every domain of its topology.
    const [noHints] = ofType(
      withBook(book).when(submitted({ tasks: null, priority: 5, deadline: at(600), budget: "1.0000" })).decisions,
      "GoalRejected",
    );
    assert.deepStrictEqual(noHints!.reasons.length, 1);
    assert.match(noHints!.reasons[0]!, /charter" v1 \(allowedDomains\): domain\(s\) testing/);
    const ok = withBook(book).when(
      submitted({ priority: 5, deadline: at(600), budget: "100.0000", topology: "aamas" }),
    ).decisions;
    assert.equal(ofType(ok, "PolicyEvaluated")[0]!.decision, "ALLOW");
    const [dgm] = ofType(
      withBook(book).when(submitted({ priority: 5, deadline: at(600), budget: "1.0000", topology: "dgm" })).decisions,
      "GoalRejected",
    );
    assert.match(dgm!.reasons[0]!, /allowedTopologies/);
  });

  it("records a FLAGGED violation as a WARN and lets the goal proceed with the warning", () => {
    const book = versions([
      { cmd: define(), now: NOW },
      {
        cmd: define({
          policyId: "urgent",
          precedence: 300,
          rules: JSON.stringify({ principle: "Few emergencies", maxPriority: 8, enforcement: "FLAGGED" }),
        }),
        now: NOW,
      },
    ]);
    const decisions = withBook(book).when(submitted({ priority: 10 })).decisions;
    assert.deepStrictEqual(
      decisions.slice(0, 4).map((d) => d.type),
      ["PolicyEvaluated", "ConstitutionalViolationDetected", "GoalSubmitted", "GoalValidated"],
    );
    const [evaluated] = ofType(decisions, "PolicyEvaluated");
    assert.deepStrictEqual([evaluated!.decision, evaluated!.policyId], ["WARN", "urgent"]);
    assert.deepStrictEqual(
      evaluated!.consultedPolicies.map((p) => p.policyId),
      ["urgent", "no-weapons"],
    );
    const [violation] = ofType(decisions, "ConstitutionalViolationDetected");
    assert.deepStrictEqual([violation!.enforcement, violation!.severity], ["FLAGGED", "WARNING"]);
    assert.match(ofType(decisions, "GoalValidated")[0]!.warnings[0]!, /"urgent" v1 \(maxPriority\)/);
  });

  it("consults a policy only within its scope of tiers and domains", () => {
    const book = versions([
      { cmd: define({ policyId: "dgm-only", appliesToTiers: ["MASTER"] }), now: NOW },
      { cmd: define({ policyId: "testing-only", domains: ["testing"] }), now: NOW },
    ]);
    withBook(book)
      .when(submitted({ title: "Build a weapon" }))
      .thenMatches((ds) => ds[0]!.type === "GoalSubmitted", "no policy applies to an aamas backend goal");
    const decisions = withBook(book).when(submitted({ title: "Build a weapon", topology: "dgm" })).decisions;
    assert.deepStrictEqual(ofType(decisions, "GoalRejected")[0]!.violatedPolicies, [
      { policyId: "dgm-only", version: 1 },
    ]);
  });
});

describe("constitutional rule language", () => {
  it("accepts every documented rule and refuses a misspelt one", () => {
    const all = {
      principle: "p",
      forbiddenTerms: ["x"],
      maxPriority: 9,
      requireDeadline: true,
      maxBudget: "1000.0000",
      allowedDomains: ["backend"],
      allowedKinds: ["GOAL", "PROJECT"],
      allowedTopologies: ["aamas", "dgm"],
      enforcement: "FLAGGED",
      severity: "INFO",
    };
    assert.deepStrictEqual(parseConstitution(JSON.stringify(all)).problems, []);
    assert.match(parseConstitution('{"maxBudget": 1000}').problems[0]!, /decimal string/);
    assert.match(parseConstitution("not json").problems[0]!, /not JSON/);
  });
});
