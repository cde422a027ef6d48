/**
 * The rule language of CONSTITUTIONAL policies and their check of a submitted goal.
 *
 * A constitutional policy's `rules` is a JSON object; every key is optional, unknown keys are
 * refused when the policy is defined or amended (a misspelt rule must not silently allow):
 *
 *   {
 *     "principle": "Polity builds no weapons",   // the principle, as stated in violations
 *     "forbiddenTerms": ["weapon", "malware"],   // no term in the goal's title, description,
 *                                                //   or any explicit task's title/description
 *                                                //   (case-insensitive substring)
 *     "maxPriority": 9,                          // goal priority at most this
 *     "requireDeadline": true,                   // the goal must have a deadline
 *     "maxBudget": "1000.0000",                  // the goal must have a budget, at most this
 *     "allowedDomains": ["frontend", "backend"], // every domain the goal would use: its domain
 *                                                //   hints and explicit tasks' domains, or, when it
 *                                                //   has neither, every domain of its topology
 *     "allowedKinds": ["GOAL", "PROJECT"],       // GoalKind
 *     "allowedTopologies": ["aamas", "dgm"],
 *     "enforcement": "BLOCKED",                  // BLOCKED (default): a violation denies the goal;
 *                                                //   FLAGGED: it is recorded, the goal proceeds (WARN)
 *     "severity": "CRITICAL"                     // of the violation; default CRITICAL when
 *                                                //   BLOCKED, WARNING when FLAGGED
 *   }
 *
 * Scope: a policy applies to a goal when its appliesToTiers is empty or names the tier deciding
 * (PRESIDENT for aamas, MASTER for dgm), and its domains is empty or shares one with the goal.
 */
import type {
  Actor,
  GoalKind,
  PolicyRef,
  Severity,
  SubmitGoal,
  Tier,
  Topology,
} from "../../../schemas/generated/types.js";
import { decision, type Decision } from "../decider.js";
import { refOf, type PolicyBook, type PolicyVersion } from "./book.js";
import { toUnits } from "../kernel/costs.js";
import { parseRulesObject, ruleChecker } from "./rules.js";

export interface ConstitutionalRules {
  principle?: string;
  forbiddenTerms?: string[];
  maxPriority?: number;
  requireDeadline?: boolean;
  maxBudget?: string;
  allowedDomains?: string[];
  allowedKinds?: GoalKind[];
  allowedTopologies?: Topology[];
  enforcement?: "BLOCKED" | "FLAGGED";
  severity?: Severity;
}

const DECIMAL = /^-?\d{1,14}(\.\d{1,4})?$/;
const KINDS: readonly GoalKind[] = ["GOAL", "PROJECT"];
const TOPOLOGIES: readonly Topology[] = ["aamas", "dgm"];
const SEVERITIES: readonly Severity[] = ["INFO", "WARNING", "CRITICAL"];

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");

/** Parses a rules document; problems are returned, one per bad key, and the rules are then unusable. */
export function parseConstitution(rules: string): { rules: ConstitutionalRules; problems: string[] } {
  const { raw: r, problems } = parseRulesObject(rules);
  if (!r) return { rules: {}, problems };
  const check = ruleChecker(r, problems);
  check("principle", (v) => typeof v === "string" && v.trim() !== "", "a non-empty string");
  check("forbiddenTerms", (v) => isStrings(v) && v.every((s) => s.trim() !== ""), "an array of non-empty strings");
  check("maxPriority", (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 10, "an integer 1-10");
  check("requireDeadline", (v) => typeof v === "boolean", "true or false");
  check("maxBudget", (v) => typeof v === "string" && DECIMAL.test(v), 'a decimal string such as "1000.0000"');
  check("allowedDomains", isStrings, "an array of domain names");
  check("allowedKinds", (v) => isStrings(v) && v.every((k) => (KINDS as string[]).includes(k)), "GOAL and/or PROJECT");
  check(
    "allowedTopologies",
    (v) => isStrings(v) && v.every((k) => (TOPOLOGIES as string[]).includes(k)),
    "aamas and/or dgm",
  );
  check("enforcement", (v) => v === "BLOCKED" || v === "FLAGGED", '"BLOCKED" or "FLAGGED"');
  check("severity", (v) => (SEVERITIES as unknown[]).includes(v), SEVERITIES.join(", "));
  const known = new Set(Object.keys(KNOWN));
  for (const key of Object.keys(r))
    if (!known.has(key)) problems.push(`unknown rule "${key}"; constitutional rules are ${[...known].join(", ")}`);
  return { rules: problems.length === 0 ? (r as ConstitutionalRules) : {}, problems };
}

const KNOWN: Record<keyof ConstitutionalRules, true> = {
  principle: true,
  forbiddenTerms: true,
  maxPriority: true,
  requireDeadline: true,
  maxBudget: true,
  allowedDomains: true,
  allowedKinds: true,
  allowedTopologies: true,
  enforcement: true,
  severity: true,
};

/** The goal as the constitution sees it. */
export interface GoalUnderReview {
  cmd: SubmitGoal;
  /** Every domain the goal would use. */
  domains: string[];
  /** The tier deciding on it. */
  tier: Tier;
}

export interface Finding {
  policy: PolicyVersion;
  principle: string;
  enforcement: "BLOCKED" | "FLAGGED";
  severity: Severity;
  /** One per rule that fired, each naming the policy, its version and the rule. */
  reasons: string[];
}

export function appliesTo(policy: PolicyVersion, goal: GoalUnderReview): boolean {
  if (policy.appliesToTiers.length > 0 && !policy.appliesToTiers.includes(goal.tier)) return false;
  if (policy.domains.length > 0 && !policy.domains.some((d) => goal.domains.includes(d))) return false;
  return true;
}

/** The rules of one policy version that the goal breaks; null when it breaks none. */
export function review(policy: PolicyVersion, goal: GoalUnderReview): Finding | null {
  const { rules, problems } = parseConstitution(policy.rules);
  const cite = (rule: string, what: string) => `policy "${policy.policyId}" v${policy.version} (${rule}): ${what}`;
  // Rules are validated when written; a version that cannot be read (written by hand) blocks.
  if (problems.length > 0)
    return finding(
      policy,
      {},
      problems.map((p) => cite("rules", p)),
    );
  const { cmd } = goal;
  const reasons: string[] = [];
  if (rules.forbiddenTerms) {
    const texts: [string, string | null][] = [
      ["title", cmd.title],
      ["description", cmd.description],
      ...(cmd.tasks ?? []).flatMap((t): [string, string | null][] => [
        [`task "${t.id}" title`, t.title],
        [`task "${t.id}" description`, t.description],
      ]),
    ];
    for (const term of rules.forbiddenTerms) {
      const where = texts.filter(([, text]) => text?.toLowerCase().includes(term.toLowerCase())).map(([w]) => w);
      if (where.length > 0)
        reasons.push(
          cite(
            "forbiddenTerms",
            `${where.join(", ")} ${where.length === 1 ? "mentions" : "mention"} forbidden term "${term}"`,
          ),
        );
    }
  }
  if (rules.maxPriority !== undefined && cmd.priority > rules.maxPriority)
    reasons.push(cite("maxPriority", `priority ${cmd.priority} is above the maximum ${rules.maxPriority}`));
  if (rules.requireDeadline && !cmd.deadline) reasons.push(cite("requireDeadline", "the goal has no deadline"));
  if (rules.maxBudget !== undefined) {
    if (cmd.budget === null)
      reasons.push(cite("maxBudget", `the goal has no budget; at most ${rules.maxBudget} is allowed`));
    else if (toUnits(cmd.budget) > toUnits(rules.maxBudget))
      reasons.push(cite("maxBudget", `budget ${cmd.budget} is above the maximum ${rules.maxBudget}`));
  }
  if (rules.allowedDomains) {
    const outside = goal.domains.filter((d) => !rules.allowedDomains!.includes(d));
    if (outside.length > 0)
      reasons.push(
        cite(
          "allowedDomains",
          `domain(s) ${outside.join(", ")} are not allowed; allowed: ${rules.allowedDomains.join(", ") || "none"}`,
        ),
      );
  }
  if (rules.allowedKinds && !rules.allowedKinds.includes(cmd.kind))
    reasons.push(cite("allowedKinds", `kind ${cmd.kind} is not allowed; allowed: ${rules.allowedKinds.join(", ")}`));
  if (rules.allowedTopologies && !rules.allowedTopologies.includes(cmd.topology))
    reasons.push(
      cite(
        "allowedTopologies",
        `topology ${cmd.topology} is not allowed; allowed: ${rules.allowedTopologies.join(", ")}`,
      ),
    );
  return reasons.length > 0 ? finding(policy, rules, reasons) : null;
}

function finding(policy: PolicyVersion, rules: ConstitutionalRules, reasons: string[]): Finding {
  const enforcement = rules.enforcement ?? "BLOCKED";
  return {
    policy,
    principle: rules.principle ?? policy.description,
    enforcement,
    severity: rules.severity ?? (enforcement === "BLOCKED" ? "CRITICAL" : "WARNING"),
    reasons,
  };
}

// ---- the check at submission ------------------------------------------------------------------

export interface ConstitutionalCheck {
  /** PolicyEvaluated and any ConstitutionalViolationDetected: written whatever the answer is. */
  decisions: Decision[];
  /** Every policy version consulted. */
  consulted: PolicyRef[];
  /** Findings of BLOCKED policies: the goal is rejected when there is any. */
  blocking: Finding[];
  /** Reasons of FLAGGED findings, for GoalValidated.warnings. */
  warnings: string[];
}

/**
 * Reviews a submitted goal against the CONSTITUTIONAL policies in effect at the command's time
 * (not the time of the decision: deciding again later gives the same answer). Consulting none
 * writes nothing; otherwise one PolicyEvaluated records the policies consulted with their
 * versions, the decision (the first DENY, else the first WARN, else ALLOW by the policy of highest
 * precedence) and its reasons, and each finding a ConstitutionalViolationDetected.
 */
export function checkConstitution(
  cmd: SubmitGoal,
  domains: string[],
  actor: Actor,
  policies: PolicyBook,
): ConstitutionalCheck {
  const goal: GoalUnderReview = { cmd, domains, tier: actor.tier };
  const applicable = policies.at(cmd.envelope.occurredAt, "CONSTITUTIONAL").filter((p) => appliesTo(p, goal));
  if (applicable.length === 0) return { decisions: [], consulted: [], blocking: [], warnings: [] };
  const findings = applicable.map((p) => review(p, goal)).filter((f): f is Finding => f !== null);
  const blocking = findings.filter((f) => f.enforcement === "BLOCKED");
  const flagged = findings.filter((f) => f.enforcement === "FLAGGED");
  const deciding = blocking[0]?.policy ?? flagged[0]?.policy ?? applicable[0]!;
  const verdict = blocking.length > 0 ? "DENY" : flagged.length > 0 ? "WARN" : "ALLOW";
  const consulted = applicable.map(refOf);
  const goalRef = { type: "GOAL" as const, id: cmd.goalId };
  const reasons =
    findings.length > 0
      ? findings.flatMap((f) => f.reasons)
      : [
          `complies with every constitutional policy in effect: ${applicable.map((p) => `"${p.policyId}" v${p.version}`).join(", ")}`,
        ];
  const decisions: Decision[] = [
    decision(
      "PolicyEvaluated",
      {
        goalId: cmd.goalId,
        subject: { type: "SubmitGoal", id: cmd.goalId, agentId: null },
        category: "CONSTITUTIONAL",
        policyId: deciding.policyId,
        policyVersion: deciding.version,
        decision: verdict,
        consultedPolicies: consulted,
        reasons,
      },
      actor,
      goalRef,
    ),
  ];
  for (const f of findings)
    decisions.push(
      decision(
        "ConstitutionalViolationDetected",
        {
          violationId: `${cmd.envelope.eventId}/${f.policy.policyId}@${f.policy.version}`,
          goalId: cmd.goalId,
          taskId: null,
          agentId: null,
          policyId: f.policy.policyId,
          policyVersion: f.policy.version,
          principle: f.principle,
          description: `goal "${cmd.goalId}" (${cmd.title}) submitted by ${cmd.envelope.actor.id}: ${f.reasons.join("; ")}`,
          severity: f.severity,
          enforcement: f.enforcement,
        },
        actor,
        goalRef,
      ),
    );
  return { decisions, consulted, blocking, warnings: flagged.flatMap((f) => f.reasons) };
}
