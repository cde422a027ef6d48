/**
 * ESCALATION policies: limits and routes of escalations, and how each tier resolves them.
 *
 * Without an ESCALATION policy nothing here changes anything: the topology's retry limits apply
 * (limits.ts, worker 5 and domain 3 by default) and an escalation is redelivered in the domain
 * while deliveries remain, then passed to the top, which fails the goal.
 *
 * ## Rules (every key optional, unknown keys refused)
 *
 *   {
 *     "workerRetries": 2,        // attempts per delivery at the tier dispatching to workers (mayor,
 *                                //   sub-master), instead of the task's maxAttempts (retries.worker)
 *     "domainRetries": 1,        // deliveries of a task in its domain (governor, sub-master), instead
 *                                //   of the topology's retries.domain
 *     "resolution": "SPLIT",     // how the domain tier resolves an escalation, for every kind ...
 *     "resolution": { "RETRIES_EXHAUSTED": "SPLIT", "TASK_FAILURE": "FAIL_GOAL" },  // ... or per kind
 *     "splitInto": 3             // parts of a SPLIT, 2 to 10 (default 2)
 *   }
 *
 * Routes (a kind the policy does not route keeps the built-in behaviour):
 * - RETRY_ELSEWHERE: deliver the task again in the domain (another mayor when there is one) while
 *   the delivery limit allows; then pass it up.
 * - REASSIGN: the same, but only to another mayor; with none, pass it up.
 * - SPLIT: replace the task by `splitInto` smaller tasks (TaskCreated with parentTaskId), which the
 *   domain tier runs itself; when every part completed it completes the task (a part is never
 *   split again: its escalation goes up). A policy applying to the top (PRESIDENT, MASTER) splits
 *   an escalation that reached it the same way, for the domain tier holding the task (president.ts).
 * - At the top every other route fails the goal (the domain's tiers already delivered what they could).
 * - FAIL_GOAL: no more deliveries: pass it to the top at once, which fails the goal.
 *
 * Scope as for every policy: appliesToTiers empty or naming the deciding tier, domains empty or
 * naming the task's domain; the policies in effect at the time of the input decided on (never a
 * later version). For each key the applicable policy of highest precedence that sets it decides.
 * Every decision a policy made writes a PolicyEvaluated naming the policy version and the reasons.
 */
import type {
  Actor,
  EscalationKind,
  EscalationOutcome,
  PolicySubject,
  TaskSpec,
  Tier,
  Topology,
} from "../../../schemas/generated/types.js";
import { decision, type Decision } from "../decider.js";
import type { PolicyBook, PolicyVersion } from "./book.js";
import { refOf } from "./book.js";
import { retryLimitsFor, type RetryLimits } from "../limits.js";
import { type HierarchyState, type TaskState } from "../kernel/state.js";
import { taskKey } from "../kernel/keys.js";
import { parseRulesObject, ruleChecker } from "./rules.js";

export type Resolution = Extract<EscalationOutcome, "RETRY_ELSEWHERE" | "REASSIGN" | "SPLIT" | "FAIL_GOAL">;

export interface EscalationRules {
  workerRetries?: number;
  domainRetries?: number;
  resolution?: Resolution | Partial<Record<EscalationKind, Resolution>>;
  splitInto?: number;
}

const RESOLUTIONS: readonly Resolution[] = ["RETRY_ELSEWHERE", "REASSIGN", "SPLIT", "FAIL_GOAL"];
const KINDS: readonly EscalationKind[] = [
  "RETRIES_EXHAUSTED",
  "TASK_FAILURE",
  "TIMEOUT",
  "AGENT_FAILURE",
  "RESOURCE_DENIED",
  "CONFLICT_UNRESOLVED",
  "POLICY_VIOLATION",
  "DEADLINE_AT_RISK",
];
const KEYS: Record<keyof EscalationRules, true> = {
  workerRetries: true,
  domainRetries: true,
  resolution: true,
  splitInto: true,
};
export const DEFAULT_SPLIT_INTO = 2;
const MAX_RETRIES = 100;
const MAX_SPLIT = 10;

/** The rules of an ESCALATION policy and their problems (rules with problems set nothing). */
export function parseEscalationRules(rules: string): { rules: EscalationRules; problems: string[] } {
  const { raw: r, problems } = parseRulesObject(rules);
  if (!r) return { rules: {}, problems };
  const check = ruleChecker(r, problems);
  const count =
    (max: number, min = 1) =>
    (v: unknown) =>
      Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
  const isResolution = (v: unknown) => (RESOLUTIONS as unknown[]).includes(v);
  check("workerRetries", count(MAX_RETRIES), `a whole number from 1 to ${MAX_RETRIES}`);
  check("domainRetries", count(MAX_RETRIES), `a whole number from 1 to ${MAX_RETRIES}`);
  check("splitInto", count(MAX_SPLIT, 2), `a whole number from 2 to ${MAX_SPLIT}`);
  check(
    "resolution",
    (v) =>
      isResolution(v) ||
      (v !== null &&
        typeof v === "object" &&
        !Array.isArray(v) &&
        Object.entries(v).every(([k, route]) => (KINDS as string[]).includes(k) && isResolution(route))),
    `one of ${RESOLUTIONS.join(", ")}, or an object of escalation kinds (${KINDS.join(", ")}) to one of them`,
  );
  const names = Object.keys(KEYS);
  for (const key of Object.keys(r))
    if (!names.includes(key)) problems.push(`unknown rule "${key}"; escalation rules are ${names.join(", ")}`);
  return { rules: problems.length === 0 ? (r as EscalationRules) : {}, problems };
}

/** Problems with the rules of an ESCALATION policy. */
export function escalationRulesProblems(rules: string): string[] {
  return parseEscalationRules(rules).problems;
}

// ---- the policy in force for one decision -----------------------------------------------------

/** A value and the policy version that set it. */
export interface Ruled<T> {
  value: T;
  policy: PolicyVersion;
}

/** What the ESCALATION policies in effect say to one tier about one task's domain. */
export interface EscalationPolicy {
  /** Every applicable policy version, highest precedence first (the consulted ones). */
  policies: PolicyVersion[];
  workerRetries: Ruled<number> | null;
  domainRetries: Ruled<number> | null;
  splitInto: Ruled<number> | null;
  /** The route of an escalation of `kind`, null when no policy routes it. */
  route(kind: EscalationKind): Ruled<Resolution> | null;
}

/**
 * The ESCALATION policies in effect at `at` applying to `tier` and `domain`; null when none does
 * (the built-in behaviour). Versions whose rules cannot be read (written by hand) set nothing.
 */
export function escalationPolicyAt(
  book: PolicyBook,
  at: Date,
  tier: Tier,
  domain: string | null,
): EscalationPolicy | null {
  const applicable = book
    .at(at, "ESCALATION")
    .filter((p) => p.appliesToTiers.length === 0 || p.appliesToTiers.includes(tier))
    .filter((p) => p.domains.length === 0 || (domain !== null && p.domains.includes(domain)));
  if (applicable.length === 0) return null;
  const parsed = applicable.map((policy) => ({ policy, rules: parseEscalationRules(policy.rules).rules }));
  const first = <K extends keyof EscalationRules>(key: K): Ruled<NonNullable<EscalationRules[K]>> | null => {
    const hit = parsed.find((p) => p.rules[key] !== undefined);
    return hit ? { value: hit.rules[key]!, policy: hit.policy } : null;
  };
  return {
    policies: applicable,
    workerRetries: first("workerRetries"),
    domainRetries: first("domainRetries"),
    splitInto: first("splitInto"),
    route(kind) {
      for (const { policy, rules } of parsed) {
        const r = rules.resolution;
        if (r === undefined) continue;
        const value = typeof r === "string" ? r : r[kind];
        if (value) return { value, policy };
      }
      return null;
    },
  };
}

/** The retry limits in force for a decision: the policy's where it sets them, else the topology's. */
export function limitsUnder(
  policy: EscalationPolicy | null,
  ctx: { retryLimits?: (topology: Topology) => RetryLimits },
  topology: Topology,
): RetryLimits {
  const base = retryLimitsFor(ctx, topology);
  return {
    worker: policy?.workerRetries?.value ?? base.worker,
    domain: policy?.domainRetries?.value ?? base.domain,
  };
}

export const cite = (p: PolicyVersion, rule: string) => `policy "${p.policyId}" v${p.version} (${rule})`;

/** The PolicyEvaluated recording a decision an ESCALATION policy made. */
export function escalationEvaluated(
  goalId: string,
  subject: PolicySubject,
  deciding: PolicyVersion,
  policy: EscalationPolicy,
  reasons: string[],
  actor: Actor,
): Decision {
  return decision(
    "PolicyEvaluated",
    {
      goalId,
      subject,
      category: "ESCALATION",
      policyId: deciding.policyId,
      policyVersion: deciding.version,
      decision: "ALLOW",
      consultedPolicies: policy.policies.map(refOf),
      reasons,
    },
    actor,
    { type: "GOAL", id: goalId },
  );
}

// ---- SPLIT ------------------------------------------------------------------------------------

/**
 * Inputs a part of a split carries, for whoever runs it (a shell worker reads them as
 * POLITY_INPUT_SPLIT_OF and POLITY_INPUT_SPLIT_PART): the task it was split from, and "i/n". The
 * hierarchy recognises a part by its TaskCreated's parentTaskId (TaskState.parentTaskId), never by these.
 */
export const SPLIT_OF = "split.of";
export const SPLIT_PART = "split.part";

export const partIdOf = (parentId: string, part: number) => `${parentId}.part${part}`;

/** The task `t` is a part of (its TaskCreated's parentTaskId), or null. */
export function splitParentOf(t: TaskState): string | null {
  return t.parentTaskId;
}

/** The parts `parent` was split into, in creation order (the tasks whose parentTaskId it is). */
export function partsOf(state: HierarchyState, parent: TaskState): TaskState[] {
  const goal = state.goals.get(parent.goalId);
  if (!goal) return [];
  const out: TaskState[] = [];
  for (const id of goal.taskIds) {
    const t = state.tasks.get(taskKey(parent.goalId, id));
    if (t?.parentTaskId === parent.spec.id) out.push(t);
  }
  return out;
}

/** The parts `task` was split into, as specs (deterministic: the same task always splits the same). */
export function splitSpecs(task: TaskState, parts: number): TaskSpec[] {
  const s = task.spec;
  return Array.from({ length: parts }, (_, i) => ({
    ...s,
    id: partIdOf(s.id, i + 1),
    title: `${s.title} (part ${i + 1} of ${parts})`,
    description: `Part ${i + 1} of ${parts} of task ${s.id}: ${s.description ?? s.title}`,
    estimatedEffortMs: s.estimatedEffortMs === null ? null : Math.ceil(s.estimatedEffortMs / parts),
    inputs: { ...s.inputs, [SPLIT_OF]: s.id, [SPLIT_PART]: `${i + 1}/${parts}` },
  }));
}

/**
 * The parts of a split, as TaskCreated (parentTaskId the split task) and a TaskAssigned of each to
 * `me`, the domain tier, which runs them like any task it receives. `me` takes the split task back
 * as a new attempt (its mayor and worker let go of it) and holds it, never handing it down
 * (isSplit), until completeSplit closes it. `by` decides the split when it is not `me` (the top,
 * splitting a task its governor or sub-master passed up): the same events, written by `by`.
 */
export function splitDecisions(
  task: TaskState,
  parts: TaskSpec[],
  me: { agentId: string; tier: Tier },
  maxAttempts: number,
  by: { agentId: string; tier: Tier } = me,
): Decision[] {
  const actor: Actor = { id: by.agentId, tier: by.tier };
  const out: Decision[] = [];
  for (const part of parts)
    out.push(
      decision(
        "TaskCreated",
        {
          goalId: task.goalId,
          task: part,
          priority: task.priority,
          maxAttempts,
          parentTaskId: task.spec.id,
          deadline: null,
        },
        actor,
        { type: "TASK", id: part.id },
      ),
    );
  out.push(
    decision(
      "TaskAssigned",
      {
        goalId: task.goalId,
        taskId: task.spec.id,
        assigneeId: me.agentId,
        assigneeTier: me.tier,
        assignedBy: by.agentId,
        attempt: task.attempt + 1,
        task: task.spec,
        priority: task.priority,
        timeoutMs: null,
      },
      actor,
      { type: "TASK", id: task.spec.id },
    ),
  );
  for (const part of parts)
    out.push(
      decision(
        "TaskAssigned",
        {
          goalId: task.goalId,
          taskId: part.id,
          assigneeId: me.agentId,
          assigneeTier: me.tier,
          assignedBy: by.agentId,
          attempt: 1,
          task: part,
          priority: task.priority,
          timeoutMs: null,
        },
        actor,
        { type: "TASK", id: part.id },
      ),
    );
  return out;
}

/** Whether `task` was split (its parts exist): its holder never hands it down. */
export function isSplit(state: HierarchyState, task: TaskState): boolean {
  const first = state.tasks.get(taskKey(task.goalId, partIdOf(task.spec.id, 1)));
  return !!first && first.parentTaskId === task.spec.id;
}

/**
 * After a part of a split completed: when every part of its task did, `me` (the domain tier holding
 * the split task) completes the split task, in the attempt it took it back with, with the parts' results, so the tasks
 * depending on it are released and the goal can complete. Its cost is the parts' (already counted).
 */
export function completeSplit(
  state: HierarchyState,
  me: { agentId: string; tier: Tier },
  goalId: string,
  completedId: string,
): Decision[] {
  const part = state.tasks.get(taskKey(goalId, completedId));
  const parentId = part ? splitParentOf(part) : null;
  const parent = parentId ? state.tasks.get(taskKey(goalId, parentId)) : undefined;
  if (!parent || parent.governorId !== me.agentId || parent.status !== "ASSIGNED") return [];
  const parts = partsOf(state, parent);
  const count = parts.length;
  if (count === 0 || parts.some((p) => p.status !== "COMPLETED")) return [];
  const outputs: Record<string, string> = {};
  for (const p of parts) {
    outputs[p.spec.id] = p.result ?? "";
    for (const [k, v] of Object.entries(p.outputs)) outputs[`${p.spec.id}.${k}`] = v;
  }
  return [
    decision(
      "TaskCompleted",
      {
        goalId,
        taskId: parent.spec.id,
        agentId: me.agentId,
        attempt: parent.attempt,
        result: `split into ${count} parts, all completed: ${parts.map((p) => `${p.spec.id}: ${p.result ?? ""}`).join("; ")}`,
        durationMs: 0,
        outputs,
        cost: "0.0000",
        exitCode: null,
        usage: null,
      },
      { id: me.agentId, tier: me.tier },
      { type: "TASK", id: parent.spec.id },
    ),
  ];
}
