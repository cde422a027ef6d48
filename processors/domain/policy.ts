/**
 * The policy engine's decider (role "policy", a SYSTEM processor): answers the commands of
 * polity.policies.commands with the versions of polity.policies.events.
 *
 * - DefinePolicy -> PolicyDefined, version 1.
 * - AmendPolicy -> PolicyAmended, version n+1, only when expectedVersion is the current version n
 *   (optimistic concurrency: an amendment based on an outdated version is refused, so no one
 *   overwrites a change they did not see).
 * - A command that cannot be accepted (a policy id already taken, an unknown or retired policy, a
 *   stale expectedVersion, rules that do not parse) is refused with a PolicyEvaluated (decision
 *   DENY, subject the command and the policy id, one reason per problem) on
 *   polity.governance.events: the schemas have no PolicyRejected, and PolicyEvaluated is the audit
 *   trail of every governance decision.
 * - Answered commands are remembered (PolicyDefined/PolicyAmended carry the commandId, a refusal's
 *   causationId is the command), so a command delivered again is answered once.
 *
 * - Ownership (tenancy.ts): a policy belongs to the tenant of its DefinePolicy's envelope, or is
 *   platform-wide when the platform defined it. Only its owner amends it: an amendment of another
 *   tenant's policy is refused as if there were no such policy (nothing of it is revealed), and one
 *   of a platform-wide policy from a tenant is refused for that reason. The gateway refuses these
 *   before writing; the engine refuses them again, so no other writer gets around it.
 *
 * A version takes effect at effectiveFrom, which is never before the moment the engine accepts it
 * (nor before the previous version's): policies apply to what follows them, never retroactively.
 */
import type { Actor, AmendPolicy, DefinePolicy, PolicyCategory } from "../../schemas/generated/types.js";
import { parseConstitution } from "./policies/constitution.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import { refOf, type PolicyVersion } from "./policies/book.js";
import { resourceRulesProblems } from "./resources.js";
import { accessRulesProblems } from "./policies/security.js";
import { escalationRulesProblems } from "./policies/escalation-policy.js";
import type { HierarchyState } from "./kernel/state.js";
import { ownerOf } from "./kernel/tenancy.js";

export const POLICY_ENGINE: Actor = { id: "policy-engine", tier: "SYSTEM" };

export const policy: TierDecider = {
  role: "policy",
  reads: new Set(["DefinePolicy", "AmendPolicy", "PolicyDefined", "PolicyAmended", "PolicyRetired"]),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "DefinePolicy":
        return define(input.value, state, ctx);
      case "AmendPolicy":
        return amend(input.value, state, ctx);
      default:
        return [];
    }
  },
};

/** Problems with a policy's rules, for its category: each category's module parses its own rules. */
export function rulesProblems(category: PolicyCategory, rules: string): string[] {
  switch (category) {
    case "CONSTITUTIONAL":
      return parseConstitution(rules).problems;
    case "RESOURCE_ALLOCATION":
    case "PERFORMANCE":
      return resourceRulesProblems(category, rules) ?? [];
    case "SECURITY":
    case "COMMUNICATION":
      return accessRulesProblems(category, rules);
    case "ESCALATION":
      return escalationRulesProblems(rules);
  }
}

function later(...times: (Date | null | undefined)[]): Date {
  return new Date(Math.max(...times.filter((t): t is Date => !!t).map((t) => t.getTime())));
}

function define(cmd: DefinePolicy, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const commandId = cmd.envelope.eventId;
  const book = state.policies;
  if (book.answered.has(commandId)) return [];
  const existing = book.latest(cmd.policyId);
  if (existing)
    return [
      refusal("DefinePolicy", commandId, cmd.policyId, cmd.category, existing, [
        `policy "${cmd.policyId}" already exists (version ${existing.version}); change it with AmendPolicy`,
      ]),
    ];
  const problems = rulesProblems(cmd.category, cmd.rules);
  if (!cmd.name.trim()) problems.push("name is empty");
  if (problems.length > 0)
    return [
      refusal(
        "DefinePolicy",
        commandId,
        cmd.policyId,
        cmd.category,
        null,
        problems.map((p) => `policy "${cmd.policyId}" not defined: ${p}`),
      ),
    ];
  return [
    decision(
      "PolicyDefined",
      {
        policyId: cmd.policyId,
        version: 1,
        name: cmd.name,
        category: cmd.category,
        description: cmd.description,
        rules: cmd.rules,
        appliesToTiers: cmd.appliesToTiers,
        domains: cmd.domains,
        precedence: cmd.precedence,
        effectiveFrom: later(ctx.now, cmd.effectiveFrom),
        commandId,
      },
      POLICY_ENGINE,
      { type: "POLICY", id: cmd.policyId, version: 1 },
    ),
  ];
}

function amend(cmd: AmendPolicy, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const commandId = cmd.envelope.eventId;
  const book = state.policies;
  if (book.answered.has(commandId)) return [];
  const owner = ownerOf(cmd.envelope.tenantId);
  const found = book.get(cmd.policyId);
  // Another tenant's policy is treated exactly like one that does not exist: the refusal names none
  // of it (its category, its versions).
  const record = found && (found.tenantId === null || found.tenantId === owner) ? found : undefined;
  const current = record ? book.latest(cmd.policyId) : undefined;
  const refuse = (reasons: string[]) => [
    refusal(
      "AmendPolicy",
      commandId,
      cmd.policyId,
      record?.category ?? "CONSTITUTIONAL",
      current ?? null,
      reasons.map((r) => `amendment of policy "${cmd.policyId}" refused: ${r}`),
    ),
  ];
  if (!record || !current) return refuse([`no policy "${cmd.policyId}" is defined`]);
  if (record.tenantId === null && owner !== null)
    return refuse(["the policy is platform-wide: only a platform admin may amend it"]);
  if (record.retired) return refuse([`the policy was retired at version ${record.retired.version}`]);
  if (cmd.expectedVersion !== current.version)
    return refuse([
      `it is based on version ${cmd.expectedVersion} but the policy is at version ${current.version}; amend version ${current.version}`,
    ]);
  const problems = rulesProblems(record.category, cmd.rules);
  if (problems.length > 0) return refuse(problems);
  const version = current.version + 1;
  return [
    decision(
      "PolicyAmended",
      {
        policyId: cmd.policyId,
        version,
        previousVersion: current.version,
        category: record.category,
        description: cmd.description ?? current.description,
        rules: cmd.rules,
        appliesToTiers: cmd.appliesToTiers ?? current.appliesToTiers,
        domains: cmd.domains ?? current.domains,
        precedence: cmd.precedence ?? current.precedence,
        rationale: cmd.rationale,
        effectiveFrom: later(ctx.now, cmd.effectiveFrom, current.effectiveFrom),
        commandId,
      },
      POLICY_ENGINE,
      { type: "POLICY", id: cmd.policyId, version },
    ),
  ];
}

/** A refused policy command, recorded as a DENY evaluation of it. */
function refusal(
  type: "DefinePolicy" | "AmendPolicy",
  commandId: string,
  policyId: string,
  category: PolicyCategory,
  current: PolicyVersion | null,
  reasons: string[],
): Decision {
  return decision(
    "PolicyEvaluated",
    {
      goalId: null,
      subject: { type, id: policyId, agentId: null },
      category,
      policyId,
      policyVersion: current?.version ?? 0,
      decision: "DENY",
      consultedPolicies: current ? [refOf(current)] : [],
      reasons,
    },
    POLICY_ENGINE,
    { type: "SYSTEM", id: commandId },
  );
}
