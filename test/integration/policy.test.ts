/**
 * The policy engine on the real stack: a constitutional policy is defined through the command
 * topic, blocks a goal that breaks it, is amended, and the next goal passes; every decision names
 * the policy version that made it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import { amendPolicy, definePolicy, submitGoal } from "../../producers/commands.js";
import type { Payload } from "../../schemas/generated/types.js";
import { deployment, task, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const user = { tenantId: "acme", userId: "alice" };
/** Decoded records are instances of their Avro types; compare their fields. */
const refs = (list: readonly { policyId: string; version: number }[] | false | undefined) =>
  list ? list.map((r) => `${r.policyId}@v${r.version}`) : list;
const admin = { tenantId: "acme", userId: "root" };

describe("policy engine on Kafka", () => {
  let d: TestDeployment;
  let h: RunningHierarchy;
  let governance: LogWatcher;
  before(async () => {
    d = await deployment(testTopology(), "policy", []);
    h = await d.start();
    governance = await LogWatcher.start(d.kafka, d.codec, d.prefix, [
      "polity.governance.events",
      "polity.policies.events",
    ]);
  });
  after(async () => {
    await governance?.stop();
    await d?.stop();
  });

  const evaluations = (goalId: string) =>
    governance.of(goalId).flatMap((e) => (e.type === "PolicyEvaluated" ? [e.value] : []));

  it("rejects a goal that breaks the constitution, and accepts it once an amendment relaxes the rule", async () => {
    await definePolicy(d.writer, admin, {
      policyId: "no-weapons",
      name: "No weapons",
      category: "CONSTITUTIONAL",
      description: "Polity builds nothing that harms",
      rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["weapon"], maxPriority: 9 }),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
    });
    await h.policies.known("no-weapons", 1);

    const tasks = [task("api", "backend", "api"), task("ui", "frontend", "react", ["api"])];
    const first = await submitGoal(d.writer, user, { title: "Water weapon", tasks });
    const rejected = await d.watch.final(first.goalId);
    assert.equal(rejected.type, "GoalRejected", JSON.stringify(rejected.value));
    if (rejected.type !== "GoalRejected") return;
    assert.equal(rejected.value.code, "CONSTITUTIONAL_VIOLATION");
    assert.deepEqual(refs(rejected.value.violatedPolicies), ["no-weapons@v1"]);
    assert.match(rejected.value.reasons[0]!, /policy "no-weapons" v1 \(forbiddenTerms\).*"weapon"/);
    assert.deepEqual(d.watch.types(first.goalId), ["GoalRejected"]);

    const violation = await governance.until("the violation", () =>
      governance.of(first.goalId).find((e) => e.type === "ConstitutionalViolationDetected"),
    );
    if (violation.type !== "ConstitutionalViolationDetected") return;
    assert.deepEqual(
      [violation.value.policyId, violation.value.policyVersion, violation.value.enforcement, violation.value.principle],
      ["no-weapons", 1, "BLOCKED", "Polity builds no weapons"],
    );
    const [denied] = evaluations(first.goalId);
    assert.deepEqual([denied?.decision, denied?.policyVersion], ["DENY", 1]);

    const amendment: Payload<"AmendPolicy"> = {
      policyId: "no-weapons",
      expectedVersion: 1,
      rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["nuclear weapon"] }),
      description: null,
      appliesToTiers: null,
      domains: null,
      precedence: null,
      rationale: "water pistols are toys",
      effectiveFrom: null,
    };
    await amendPolicy(d.writer, admin, amendment);
    await h.policies.known("no-weapons", 2);
    // The same amendment from someone who did not see version 2 is refused.
    const stale = await amendPolicy(d.writer, admin, { ...amendment, rationale: "late" });
    const refusal = await governance.until("the stale amendment's refusal", () =>
      governance.seen
        .map((s) => s.event)
        .find((e) => e.type === "PolicyEvaluated" && e.value.envelope.causationId === stale.envelope.eventId),
    );
    if (refusal.type !== "PolicyEvaluated") return;
    assert.deepEqual(
      [refusal.value.decision, refusal.value.subject.type, refusal.value.policyVersion],
      ["DENY", "AmendPolicy", 2],
    );
    assert.match(refusal.value.reasons[0]!, /based on version 1 but the policy is at version 2/);

    const second = await submitGoal(d.writer, user, { title: "Water weapon", tasks });
    const done = await d.watch.final(second.goalId, 90_000);
    assert.equal(done.type, "GoalCompleted", JSON.stringify(done.value));
    const validated = d.watch.of(second.goalId).find((e) => e.type === "GoalValidated");
    assert.deepEqual(refs(validated?.type === "GoalValidated" && validated.value.consultedPolicies), ["no-weapons@v2"]);
    const [allowed] = await governance.until("the ALLOW", () => {
      const found = evaluations(second.goalId);
      return found.length > 0 && found;
    });
    assert.deepEqual(
      [allowed!.decision, allowed!.policyVersion, refs(allowed!.consultedPolicies)],
      ["ALLOW", 2, ["no-weapons@v2"]],
    );

    // The log of versions: exactly one of each, as the engine wrote them.
    const versions = governance.seen
      .map((s) => s.event)
      .flatMap((e) => (e.type === "PolicyDefined" || e.type === "PolicyAmended" ? [e.value.version] : []));
    assert.deepEqual(versions, [1, 2]);
  });
});
