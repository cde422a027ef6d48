/**
 * SECURITY (who may command whom) and COMMUNICATION (which edges of the hierarchy may carry a
 * conversation) policies: their rule languages and their checks. Every check is pure: it reads the
 * versions in effect at the time of what is judged (a command's or a request's occurredAt, never
 * the latest), and returns the verdict with the PolicyEvaluated that records it.
 *
 * A SECURITY policy's `rules` is a JSON object; every key is optional, unknown keys are refused
 * when the policy is defined or amended (a misspelt rule must not silently allow):
 *
 *   {
 *     "principle": "Only operators stop goals",        // stated in every reason
 *     "commandTiers": { "StopGoal": ["SYSTEM"],         // per command, the actor tiers that may issue it
 *                       "SubmitGoal": ["USER"] },        //   (SubmitGoal, StopGoal, RequestPhaseTransition)
 *     "commandActors": { "StopGoal": ["oncall-alice"] },// per command, actor ids admitted whatever their tier;
 *                                                        //   a command named in either map admits only those
 *     "deniedActors": ["mallory"],                      // actor ids refused every command above
 *     "assignTo": { "MAYOR": ["WORKER"],                // per assigning tier, the tiers it may hand tasks to;
 *                   "GOVERNOR": ["MAYOR"] },             //   a tier not named is not restricted
 *     "enforcement": "BLOCKED"                          // BLOCKED (default): a breach is refused;
 *                                                        //   FLAGGED: recorded as WARN, the action proceeds
 *   }
 *
 * A COMMUNICATION policy's `rules`:
 *
 *   {
 *     "principle": "Context comes down the chain of command",
 *     "contextEdges": ["SUPERIOR", "CHAIN_OF_COMMAND"], // the edges a ContextRequested may travel
 *     "queryEdges": ["TEAM"],                           // the edges a QueryAsked may travel
 *     "enforcement": "BLOCKED"
 *   }
 *
 * Edges, between the agent asking and the agent asked (from the agent directory):
 *   SUPERIOR          the agent asked is the asker's direct superior;
 *   CHAIN_OF_COMMAND  one of the two commands the other, directly or through tiers between them;
 *   TEAM              both report to the same superior (peers of one mayor, governor, ...);
 *   DOMAIN            both belong to the same domain;
 *   ANY               every edge (a policy that only records the conversation).
 * An asker the directory does not know (a user, an outside program) travels only an ANY edge.
 *
 * Scope, as for constitutional policies: a policy applies when its appliesToTiers is empty or names
 * the tier deciding (the president or master for commands, the dispatcher for an assignment, the
 * agent asked for a request or query), its domains is empty or shares one with what is judged (the
 * goal's domains for a command; the task's and both parties' domains otherwise), and it has a rule
 * about what is judged. A policy without such a rule is not consulted, so it writes nothing.
 */
import type { Actor, PolicyCategory, PolicyRef, PolicySubject, Tier } from "../../../schemas/generated/types.js";
import { decision, type Decision } from "../decider.js";
import type { AgentDirectory, AgentInfo } from "../directory.js";
import { refOf, type PolicyBook, type PolicyVersion } from "./book.js";
import { parseRulesObject, ruleChecker } from "./rules.js";

// ---- the rule languages ----------------------------------------------------------------------

/** Commands whose issuers SECURITY policies govern (the president/master answers them). */
export const GOVERNED_COMMANDS = ["SubmitGoal", "StopGoal", "RequestPhaseTransition"] as const;
export type GovernedCommand = (typeof GOVERNED_COMMANDS)[number];

export const EDGES = ["SUPERIOR", "CHAIN_OF_COMMAND", "TEAM", "DOMAIN", "ANY"] as const;
export type Edge = (typeof EDGES)[number];

const TIERS: readonly Tier[] = ["PRESIDENT", "GOVERNOR", "MAYOR", "MASTER", "SUB_MASTER", "WORKER", "SYSTEM", "USER"];
/** Tiers that hand tasks down. */
const ASSIGNING_TIERS: readonly Tier[] = ["PRESIDENT", "GOVERNOR", "MAYOR", "MASTER", "SUB_MASTER"];

export interface SecurityRules {
  principle?: string;
  commandTiers?: Partial<Record<GovernedCommand, Tier[]>>;
  commandActors?: Partial<Record<GovernedCommand, string[]>>;
  deniedActors?: string[];
  assignTo?: Partial<Record<Tier, Tier[]>>;
  enforcement?: "BLOCKED" | "FLAGGED";
}

export interface CommunicationRules {
  principle?: string;
  contextEdges?: Edge[];
  queryEdges?: Edge[];
  enforcement?: "BLOCKED" | "FLAGGED";
}

const SECURITY_KEYS: Record<keyof SecurityRules, true> = {
  principle: true,
  commandTiers: true,
  commandActors: true,
  deniedActors: true,
  assignTo: true,
  enforcement: true,
};
const COMMUNICATION_KEYS: Record<keyof CommunicationRules, true> = {
  principle: true,
  contextEdges: true,
  queryEdges: true,
  enforcement: true,
};

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const within = (allowed: readonly string[]) => (v: unknown) => isStrings(v) && v.every((s) => allowed.includes(s));

/** Parses the rules of a SECURITY or COMMUNICATION policy; with any problem the rules are unusable. */
export function parseAccessRules(
  category: "SECURITY" | "COMMUNICATION",
  rules: string,
): { rules: SecurityRules & CommunicationRules; problems: string[] } {
  const { raw, problems } = parseRulesObject(rules);
  if (!raw) return { rules: {}, problems };
  const check = ruleChecker(raw, problems);
  /** A map whose keys come from `keys` and whose values are arrays passing `values`. */
  const map = (
    key: string,
    keys: readonly string[],
    keyWhat: string,
    values: (v: unknown) => boolean,
    what: string,
  ) => {
    const v = raw[key];
    if (!(key in raw)) return;
    if (!isObject(v)) {
      problems.push(`rule "${key}" must be an object of ${keyWhat} to ${what}, got ${JSON.stringify(v)}`);
      return;
    }
    for (const [k, list] of Object.entries(v)) {
      if (!keys.includes(k)) problems.push(`rule "${key}" names "${k}", which is not ${keyWhat}: ${keys.join(", ")}`);
      else if (!values(list)) problems.push(`rule "${key}" for "${k}" must be ${what}, got ${JSON.stringify(list)}`);
    }
  };
  check("principle", (v) => typeof v === "string" && v.trim() !== "", "a non-empty string");
  check("enforcement", (v) => v === "BLOCKED" || v === "FLAGGED", '"BLOCKED" or "FLAGGED"');
  const known: Record<string, true> = category === "SECURITY" ? SECURITY_KEYS : COMMUNICATION_KEYS;
  if (category === "SECURITY") {
    map(
      "commandTiers",
      GOVERNED_COMMANDS,
      "a governed command",
      within(TIERS),
      `an array of tiers (${TIERS.join(", ")})`,
    );
    map("commandActors", GOVERNED_COMMANDS, "a governed command", isStrings, "an array of actor ids");
    check("deniedActors", isStrings, "an array of actor ids");
    map(
      "assignTo",
      ASSIGNING_TIERS,
      "a tier that assigns tasks",
      within(TIERS),
      `an array of tiers (${TIERS.join(", ")})`,
    );
  } else {
    const edges = `an array of edges (${EDGES.join(", ")})`;
    check("contextEdges", within(EDGES), edges);
    check("queryEdges", within(EDGES), edges);
  }
  const other = category === "SECURITY" ? COMMUNICATION_KEYS : SECURITY_KEYS;
  for (const key of Object.keys(raw)) {
    if (known[key]) continue;
    const hint = key in other ? ` (a ${category === "SECURITY" ? "COMMUNICATION" : "SECURITY"} rule)` : "";
    problems.push(`unknown rule "${key}"${hint}; ${category} rules are ${Object.keys(known).join(", ")}`);
  }
  return { rules: problems.length === 0 ? (raw as SecurityRules & CommunicationRules) : {}, problems };
}

/** Problems with the rules of a SECURITY or COMMUNICATION policy (the policy engine's check, policy.ts). */
export function accessRulesProblems(category: PolicyCategory, rules: string): string[] {
  if (category !== "SECURITY" && category !== "COMMUNICATION")
    return [`${category} rules are not access rules; only SECURITY and COMMUNICATION are`];
  return parseAccessRules(category, rules).problems;
}

// ---- evaluation ------------------------------------------------------------------------------

/** What is judged, for scope and for the evaluation it writes. */
export interface Judged {
  category: "SECURITY" | "COMMUNICATION";
  /** When it happened: the versions in effect then are consulted. */
  at: Date;
  /** The tier deciding (scope: appliesToTiers). */
  tier: Tier;
  /** The domains it concerns (scope: a policy's domains). */
  domains: string[];
  goalId: string | null;
  subject: PolicySubject;
  /** The decider writing the evaluation. */
  actor: Actor;
  /** A goal-level evaluation is about the goal; otherwise about the task, when one is named. */
  aggregate: { type: "GOAL" | "TASK"; id: string };
}

/**
 * The rules of one version that fire on what is judged: null when the version has no rule about
 * it (not consulted), else the reasons it objects (empty: it allows). `cite` names the rule.
 */
type Rule<R> = (rules: R, cite: (rule: string, what: string) => string) => string[] | null;

export interface AccessCheck {
  /** ALLOW, DENY or WARN; null when no policy applied (nothing was consulted, nothing is written). */
  verdict: "ALLOW" | "DENY" | "WARN" | null;
  consulted: PolicyRef[];
  /** The versions of BLOCKED policies that objected. */
  denying: PolicyRef[];
  /** The objections (one per rule that fired), or why it was allowed. */
  reasons: string[];
  /** The PolicyEvaluated recording the verdict, when there is one. */
  decisions: Decision[];
}

const NOTHING_APPLIED: AccessCheck = { verdict: null, consulted: [], denying: [], reasons: [], decisions: [] };

function inScope(p: PolicyVersion, j: Judged): boolean {
  if (p.appliesToTiers.length > 0 && !p.appliesToTiers.includes(j.tier)) return false;
  if (p.domains.length > 0 && !p.domains.some((d) => j.domains.includes(d))) return false;
  return true;
}

/**
 * Consults the policies of `j.category` in effect at `j.at` that are in scope and have a rule
 * about what is judged. Decision: the first BLOCKED objection denies, else the first FLAGGED one
 * warns, else the highest-precedence policy allows; one PolicyEvaluated records it.
 */
function evaluate<R extends { principle?: string; enforcement?: "BLOCKED" | "FLAGGED" }>(
  policies: PolicyBook,
  j: Judged,
  rule: Rule<R>,
): AccessCheck {
  const objections: { policy: PolicyVersion; blocked: boolean; reasons: string[] }[] = [];
  const applied: PolicyVersion[] = [];
  for (const p of policies.at(j.at, j.category)) {
    if (!inScope(p, j)) continue;
    const cite = (name: string, what: string) => `policy "${p.policyId}" v${p.version} (${name}): ${what}`;
    const { rules, problems } = parseAccessRules(j.category, p.rules);
    // Rules are validated when written; a version that cannot be read (written by hand) blocks.
    const reasons = problems.length > 0 ? problems.map((x) => cite("rules", x)) : rule(rules as R, cite);
    if (reasons === null) continue;
    applied.push(p);
    if (reasons.length === 0) continue;
    const principle = (rules as R).principle;
    objections.push({
      policy: p,
      blocked: (rules as R).enforcement !== "FLAGGED",
      reasons: principle ? reasons.map((r) => `${r} [${principle}]`) : reasons,
    });
  }
  if (applied.length === 0) return NOTHING_APPLIED;
  const blocking = objections.filter((o) => o.blocked);
  const deciding = blocking[0]?.policy ?? objections[0]?.policy ?? applied[0]!;
  const verdict = blocking.length > 0 ? "DENY" : objections.length > 0 ? "WARN" : "ALLOW";
  const consulted = applied.map(refOf);
  const reasons =
    objections.length > 0
      ? objections.flatMap((o) => o.reasons)
      : [
          `allowed by every ${j.category.toLowerCase()} policy in effect: ${applied.map((p) => `"${p.policyId}" v${p.version}`).join(", ")}`,
        ];
  return {
    verdict,
    consulted,
    denying: blocking.map((o) => refOf(o.policy)),
    reasons,
    decisions: [
      decision(
        "PolicyEvaluated",
        {
          goalId: j.goalId,
          subject: j.subject,
          category: j.category,
          policyId: deciding.policyId,
          policyVersion: deciding.version,
          decision: verdict,
          consultedPolicies: consulted,
          reasons,
        },
        j.actor,
        j.aggregate,
      ),
    ],
  };
}

// ---- SECURITY: commands ----------------------------------------------------------------------

/** The agent an action was taken for, as PolicySubject names it: null for users and the platform. */
export const onBehalfOf = (actor: Actor): string | null =>
  actor.tier === "USER" || actor.tier === "SYSTEM" ? null : actor.id;

export interface CommandUnderCheck {
  command: GovernedCommand;
  /** The command's envelope actor: who issued it. */
  issuer: Actor;
  occurredAt: Date;
  goalId: string;
  /** The goal's domains. */
  domains: string[];
  /** The president or master deciding (its evaluation's actor). */
  decider: Actor;
  /** The tier deciding, PRESIDENT or MASTER (scope), even when no such agent is registered. */
  tier: Tier;
}

/** Whether the issuer of a command may issue it, by the SECURITY policies in effect when it was issued. */
export function checkCommand(c: CommandUnderCheck, policies: PolicyBook): AccessCheck {
  const who = `${c.command} by ${c.issuer.id} (${c.issuer.tier})`;
  return evaluate<SecurityRules>(
    policies,
    {
      category: "SECURITY",
      at: c.occurredAt,
      tier: c.tier,
      domains: c.domains,
      goalId: c.goalId,
      subject: { type: c.command, id: c.goalId, agentId: onBehalfOf(c.issuer) },
      actor: c.decider,
      aggregate: { type: "GOAL", id: c.goalId },
    },
    (rules, cite) => {
      const tiers = rules.commandTiers?.[c.command];
      const actors = rules.commandActors?.[c.command];
      if (!tiers && !actors && !rules.deniedActors) return null;
      const reasons: string[] = [];
      if (rules.deniedActors?.includes(c.issuer.id))
        reasons.push(cite("deniedActors", `${who} is refused: ${c.issuer.id} may issue no command`));
      if ((tiers || actors) && !tiers?.includes(c.issuer.tier) && !actors?.includes(c.issuer.id)) {
        const allowed = [...(tiers ?? []).map((t) => `tier ${t}`), ...(actors ?? [])].join(", ") || "no one";
        reasons.push(cite(tiers ? "commandTiers" : "commandActors", `${who} is not allowed; allowed: ${allowed}`));
      }
      return reasons;
    },
  );
}

// ---- SECURITY: assignments -------------------------------------------------------------------

export interface AssignmentUnderCheck {
  /** The agent handing the task down. */
  assigner: AgentInfo;
  /** The tier of the agent receiving it. */
  assigneeTier: Tier;
  assigneeId: string | null;
  goalId: string;
  taskId: string;
  /** The task's domain. */
  domain: string;
  /** The time of what the assignment follows from. */
  at: Date;
}

/** Whether a tier may hand a task to another tier, by the SECURITY policies in effect at `at`. */
export function checkAssignment(a: AssignmentUnderCheck, policies: PolicyBook): AccessCheck {
  const edge = `${a.assigner.agentId} (${a.assigner.tier}) assigning task ${a.taskId} to ${a.assigneeId ?? "a"} ${a.assigneeTier}`;
  return evaluate<SecurityRules>(
    policies,
    {
      category: "SECURITY",
      at: a.at,
      tier: a.assigner.tier,
      domains: [a.domain],
      goalId: a.goalId,
      subject: { type: "TaskAssigned", id: a.taskId, agentId: a.assigner.agentId },
      actor: { id: a.assigner.agentId, tier: a.assigner.tier },
      aggregate: { type: "TASK", id: a.taskId },
    },
    (rules, cite) => {
      const allowed = rules.assignTo?.[a.assigner.tier];
      if (!allowed) return null;
      return allowed.includes(a.assigneeTier)
        ? []
        : [
            cite(
              "assignTo",
              `${edge} is not allowed; ${a.assigner.tier} may assign to ${allowed.join(", ") || "no tier"}`,
            ),
          ];
    },
  );
}

// ---- COMMUNICATION: requests and queries -----------------------------------------------------

/** Whether `ancestor` commands `agent`, directly or through tiers between them. */
function commands(directory: AgentDirectory, ancestor: string, agent: AgentInfo): boolean {
  const seen = new Set<string>();
  for (let id = agent.superiorId; id && !seen.has(id); id = directory.get(id)?.superiorId ?? null) {
    if (id === ancestor) return true;
    seen.add(id);
  }
  return false;
}

/** The edges joining the agent asking to the agent asked. */
export function edgesBetween(directory: AgentDirectory, askerId: string, asked: AgentInfo): Set<Edge> {
  const out = new Set<Edge>(["ANY"]);
  const asker = directory.get(askerId);
  if (!asker) return out;
  if (asker.superiorId === asked.agentId) out.add("SUPERIOR");
  if (commands(directory, asked.agentId, asker) || commands(directory, asker.agentId, asked))
    out.add("CHAIN_OF_COMMAND");
  if (asker.superiorId !== null && asker.superiorId === asked.superiorId) out.add("TEAM");
  if (asker.domain !== null && asker.domain === asked.domain) out.add("DOMAIN");
  return out;
}

export interface ConversationUnderCheck {
  kind: "ContextRequested" | "QueryAsked";
  /** requestId or queryId. */
  id: string;
  goalId: string;
  taskId: string | null;
  /** The task's domain, when the agent asked knows the task. */
  taskDomain: string | null;
  askerId: string;
  askerTier: Tier;
  /** The agent asked: it decides whether to answer. */
  asked: AgentInfo;
  occurredAt: Date;
}

/** Whether a request or query may travel from its asker to the agent asked, by COMMUNICATION policies. */
export function checkConversation(
  c: ConversationUnderCheck,
  directory: AgentDirectory,
  policies: PolicyBook,
): AccessCheck {
  const asker = directory.get(c.askerId);
  const domains = [c.taskDomain, asker?.domain ?? null, c.asked.domain].filter((d): d is string => d !== null);
  const key = c.kind === "ContextRequested" ? "contextEdges" : "queryEdges";
  const what = c.kind === "ContextRequested" ? "context request" : "query";
  return evaluate<CommunicationRules>(
    policies,
    {
      category: "COMMUNICATION",
      at: c.occurredAt,
      tier: c.asked.tier,
      domains: [...new Set(domains)].sort(),
      goalId: c.goalId,
      subject: { type: c.kind, id: c.id, agentId: c.askerId },
      actor: { id: c.asked.agentId, tier: c.asked.tier },
      aggregate: c.taskId ? { type: "TASK", id: c.taskId } : { type: "GOAL", id: c.goalId },
    },
    (rules, cite) => {
      const allowed = rules[key];
      if (!allowed) return null;
      const edges = edgesBetween(directory, c.askerId, c.asked);
      if (allowed.some((e) => edges.has(e))) return [];
      const found = [...edges].filter((e) => e !== "ANY");
      return [
        cite(
          key,
          `${what} ${c.id} from ${c.askerId} (${c.askerTier}) to ${c.asked.agentId} (${c.asked.tier}) travels ${found.length > 0 ? found.join(", ") : "no edge of the hierarchy"}; allowed: ${allowed.join(", ") || "none"}`,
        ),
      ];
    },
  );
}
