/**
 * Resource allocation and performance SLAs (role "resources", a SYSTEM processor acting as
 * "resource-manager"). It reads polity.governance.events, polity.tasks.events and
 * polity.goals.events, all keyed by goal and co-partitioned, so one partition's state holds a
 * goal, its tasks, its budget and every request made for it.
 *
 * ## The budget flow
 *
 * 1. A governor (aamas) or sub-master (dgm) holding a task asks for its budget before handing it
 *    down, when a RESOURCE_ALLOCATION policy applying to it (tier, task domain) is in effect at the
 *    moment it received the task: ResourceRequested, kind BUDGET, requestId `res-<goal>-<task>`,
 *    amount from the policy (`taskBudget`, or `costPerEffortHour` x the task's estimatedEffortMs).
 *    One request per task, whatever the attempts. Without such a policy it asks nothing and
 *    dispatches at once: existing flows are unchanged.
 * 2. The resource manager answers from the RESOURCE_ALLOCATION policies in effect at the request's
 *    time (never later ones: an amendment governs later requests only) and from what the goal's
 *    budget has left: ResourceAllocated (granted = requested) or ResourceDenied (every reason,
 *    availableAmount = what was left), and a PolicyEvaluated naming the policies consulted (none
 *    is written when no policy was consulted, as for the constitution).
 * 3. The goal's budget is SubmitGoal.budget (else a policy's `defaultGoalBudget`; none means no
 *    limit). What allocations hold is derived from events, never written: an allocation of a task
 *    that completed holds the task's actual cost (a lower cost releases the rest), one of a
 *    cancelled task holds nothing, any other holds its granted amount.
 * 4. The requester dispatches the task once ResourceAllocated arrives; on ResourceDenied it raises
 *    an EscalationRaised (RESOURCE_DENIED) with the denial's reasons to the top, which fails the goal.
 *
 * ## RESOURCE_ALLOCATION rules (every key optional, unknown keys refused)
 *
 *   {
 *     "taskBudget": "1.0000",          // what a governor asks per task (default 1.0000)
 *     "costPerEffortHour": "2.0000",   // when set and the task has estimatedEffortMs, it asks
 *                                      //   effort-hours x this instead
 *     "maxTaskBudget": "5.0000",       // a BUDGET request above it is denied
 *     "defaultGoalBudget": "10.0000",  // the budget of a goal submitted without one
 *     "enforceGoalBudget": true,       // deny a BUDGET request the goal's budget cannot cover (default true)
 *     "quotas": { "API_QUOTA": "1000" } // per goal: total granted of a kind (not BUDGET) at most this
 *   }
 *
 * Every applicable policy applies (a request must satisfy them all); the amount asked, the default
 * goal budget and enforceGoalBudget come from the applicable policy of highest precedence that sets
 * them. Scope as in constitution.ts: appliesToTiers empty or naming the requester's tier, domains
 * empty or naming the task's domain.
 *
 * ## PERFORMANCE rules, checked on every TaskCompleted and TaskFailed
 *
 *   {
 *     "maxTaskDurationMs": 60000,  // an attempt that took longer: metric task_duration_ms
 *     "minSuccessRate": 0.8,       // on a failure, the goal's completed tasks / (completed + failed
 *                                  //   attempts) below it: metric success_rate
 *     "minSamples": 1,             // success rate checked once this many attempts ended (default 1)
 *     "severity": "WARNING"        // of the alert (default WARNING)
 *   }
 *
 * Scope: appliesToTiers empty or naming WORKER, domains empty or naming the task's domain; the
 * policies in effect at the event's time. Each breach writes a PerformanceAlert (once: its id is
 * derived from the attempt, metric and policy) and the event one PolicyEvaluated (WARN) with every
 * breach; an attempt within its SLAs writes nothing.
 */
import type {
  Actor,
  MessageTypeName,
  PolicyCategory,
  ResourceKind,
  ResourceRequested,
  Severity,
  TaskCompleted,
  TaskFailed,
  Tier,
} from "../../schemas/generated/types.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import { refOf, type PolicyBook, type PolicyVersion } from "./policies.js";
import {
  formatCost,
  taskKey,
  toUnits,
  type Allocation,
  type GoalState,
  type HierarchyState,
  type TaskState,
} from "./state.js";

export const RESOURCE_MANAGER: Actor = { id: "resource-manager", tier: "SYSTEM" };
/** The unit of BUDGET amounts: the tenant's billing currency, as SubmitGoal.budget. */
export const BUDGET_UNIT = "billing-currency";
const DEFAULT_TASK_BUDGET = "1.0000";

// ---- the rule languages -----------------------------------------------------------------------

export interface AllocationRules {
  taskBudget?: string;
  costPerEffortHour?: string;
  maxTaskBudget?: string;
  defaultGoalBudget?: string;
  enforceGoalBudget?: boolean;
  quotas?: Partial<Record<ResourceKind, string>>;
}

export interface PerformanceRules {
  maxTaskDurationMs?: number;
  minSuccessRate?: number;
  minSamples?: number;
  severity?: Severity;
}

const DECIMAL = /^\d{1,14}(\.\d{1,4})?$/;
const isDecimal = (v: unknown) => typeof v === "string" && DECIMAL.test(v);
const KINDS: readonly ResourceKind[] = ["COMPUTATIONAL", "API_QUOTA", "AGENT_CAPACITY", "BUDGET"];
const SEVERITIES: readonly Severity[] = ["INFO", "WARNING", "CRITICAL"];

const ALLOCATION_KEYS: Record<keyof AllocationRules, true> = {
  taskBudget: true,
  costPerEffortHour: true,
  maxTaskBudget: true,
  defaultGoalBudget: true,
  enforceGoalBudget: true,
  quotas: true,
};
const PERFORMANCE_KEYS: Record<keyof PerformanceRules, true> = {
  maxTaskDurationMs: true,
  minSuccessRate: true,
  minSamples: true,
  severity: true,
};

type Parsed<R> = { rules: R; problems: string[] };

function parseObject(rules: string): { raw: Record<string, unknown> | null; problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(rules);
  } catch (e) {
    return { raw: null, problems: [`rules are not JSON: ${(e as Error).message}`] };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    return { raw: null, problems: ["rules must be a JSON object"] };
  return { raw: raw as Record<string, unknown>, problems: [] };
}

function checker(r: Record<string, unknown>, problems: string[]) {
  return (key: string, ok: (v: unknown) => boolean, what: string) => {
    if (key in r && !ok(r[key])) problems.push(`rule "${key}" must be ${what}, got ${JSON.stringify(r[key])}`);
  };
}

function unknownKeys(r: Record<string, unknown>, known: object, category: string, problems: string[]) {
  const names = Object.keys(known);
  for (const key of Object.keys(r))
    if (!names.includes(key)) problems.push(`unknown rule "${key}"; ${category} rules are ${names.join(", ")}`);
}

export function parseAllocationRules(rules: string): Parsed<AllocationRules> {
  const { raw: r, problems } = parseObject(rules);
  if (!r) return { rules: {}, problems };
  const check = checker(r, problems);
  const decimal = 'a decimal string such as "5.0000"';
  check("taskBudget", isDecimal, decimal);
  check("costPerEffortHour", isDecimal, decimal);
  check("maxTaskBudget", isDecimal, decimal);
  check("defaultGoalBudget", isDecimal, decimal);
  check("enforceGoalBudget", (v) => typeof v === "boolean", "true or false");
  check(
    "quotas",
    (v) =>
      v !== null &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      Object.entries(v).every(([k, q]) => k !== "BUDGET" && (KINDS as string[]).includes(k) && isDecimal(q)),
    "an object of COMPUTATIONAL, API_QUOTA or AGENT_CAPACITY to decimal strings",
  );
  unknownKeys(r, ALLOCATION_KEYS, "resource allocation", problems);
  return { rules: problems.length === 0 ? (r as AllocationRules) : {}, problems };
}

export function parsePerformanceRules(rules: string): Parsed<PerformanceRules> {
  const { raw: r, problems } = parseObject(rules);
  if (!r) return { rules: {}, problems };
  const check = checker(r, problems);
  check("maxTaskDurationMs", (v) => Number.isInteger(v) && (v as number) >= 0, "a whole number of milliseconds");
  check("minSuccessRate", (v) => typeof v === "number" && v >= 0 && v <= 1, "a number from 0 to 1");
  check("minSamples", (v) => Number.isInteger(v) && (v as number) >= 1, "a whole number, at least 1");
  check("severity", (v) => (SEVERITIES as unknown[]).includes(v), SEVERITIES.join(", "));
  unknownKeys(r, PERFORMANCE_KEYS, "performance", problems);
  return { rules: problems.length === 0 ? (r as PerformanceRules) : {}, problems };
}

/** Rule problems of the categories this module reads; null for other categories. */
export function resourceRulesProblems(category: PolicyCategory, rules: string): string[] | null {
  if (category === "RESOURCE_ALLOCATION") return parseAllocationRules(rules).problems;
  if (category === "PERFORMANCE") return parsePerformanceRules(rules).problems;
  return null;
}

function scoped(policy: PolicyVersion, tier: Tier, domain: string | null): boolean {
  if (policy.appliesToTiers.length > 0 && !policy.appliesToTiers.includes(tier)) return false;
  if (policy.domains.length > 0 && (!domain || !policy.domains.includes(domain))) return false;
  return true;
}

/** The policies of `category` in effect at `at` applying to `tier` and `domain`, with their rules. */
function applicable<R>(
  book: PolicyBook,
  category: PolicyCategory,
  at: Date,
  tier: Tier,
  domain: string | null,
  parse: (rules: string) => Parsed<R>,
): { policy: PolicyVersion; rules: R; problems: string[] }[] {
  return book
    .at(at, category)
    .filter((p) => scoped(p, tier, domain))
    .map((policy) => ({ policy, ...parse(policy.rules) }));
}

const cite = (p: PolicyVersion, rule: string, what: string) =>
  `policy "${p.policyId}" v${p.version} (${rule}): ${what}`;

// ---- the request (made by the governor / sub-master) -----------------------------------------

/**
 * The budget request a governor or sub-master makes for a task it holds, or null when no
 * RESOURCE_ALLOCATION policy applying to it was in effect when it received the task.
 */
export function budgetRequestFor(
  task: TaskState,
  requester: { agentId: string; tier: Tier },
  book: PolicyBook,
): Decision | null {
  const at = task.heldSince;
  if (!at) return null;
  const policies = applicable(book, "RESOURCE_ALLOCATION", at, requester.tier, task.spec.domain, parseAllocationRules);
  if (policies.length === 0) return null;
  const effort = task.spec.estimatedEffortMs;
  const rate = policies.find((p) => p.rules.costPerEffortHour !== undefined);
  const fixed = policies.find((p) => p.rules.taskBudget !== undefined);
  let amount: string;
  let justification: string;
  if (rate && effort !== null && effort !== undefined) {
    // effort-hours x rate, in units of 1/10000, rounded up.
    const units = (BigInt(Math.ceil(effort)) * toUnits(rate.rules.costPerEffortHour!) + 3_599_999n) / 3_600_000n;
    amount = formatCost(units);
    justification = `${effort} ms of estimated effort at ${rate.rules.costPerEffortHour} per hour (policy "${rate.policy.policyId}" v${rate.policy.version})`;
  } else if (fixed) {
    amount = formatCost(toUnits(fixed.rules.taskBudget!));
    justification = `the per-task budget of policy "${fixed.policy.policyId}" v${fixed.policy.version}`;
  } else {
    amount = DEFAULT_TASK_BUDGET;
    justification = "the default per-task budget";
  }
  return decision(
    "ResourceRequested",
    {
      requestId: requestIdOf(task.goalId, task.spec.id),
      goalId: task.goalId,
      taskId: task.spec.id,
      requesterId: requester.agentId,
      requesterTier: requester.tier,
      kind: "BUDGET",
      amount,
      unit: BUDGET_UNIT,
      durationMs: null,
      priority: task.priority,
      justification: `task ${task.spec.id} (${task.spec.title}): ${justification}`,
    },
    { id: requester.agentId, tier: requester.tier },
    { type: "GOAL", id: task.goalId },
  );
}

export const requestIdOf = (goalId: string, taskId: string) => `res-${goalId}-${taskId}`;

// ---- the resource manager's decider -----------------------------------------------------------

export const resources: TierDecider = {
  role: "resources",
  reads: new Set<MessageTypeName>([
    "GoalSubmitted",
    "GoalCompleted",
    "GoalFailed",
    "GoalStopped",
    "TaskCreated",
    "TaskAssigned",
    "TaskCompleted",
    "TaskFailed",
    "TaskRetried",
    "TaskCancelled",
    "ResourceRequested",
    "ResourceAllocated",
    "ResourceDenied",
    "PerformanceAlert",
  ]),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "ResourceRequested":
        return answer(input.value, state, ctx);
      case "TaskCompleted":
      case "TaskFailed":
        return checkPerformance(input, state, ctx);
      default:
        return [];
    }
  },
};

/** What an allocation holds of the goal's budget now (see the module's point 3). */
function held(state: HierarchyState, goalId: string, a: Allocation): bigint {
  if (a.status !== "ALLOCATED") return 0n;
  const task = a.taskId ? state.tasks.get(taskKey(goalId, a.taskId)) : undefined;
  if (task?.status === "COMPLETED") return toUnits(task.cost);
  if (task?.status === "CANCELLED") return 0n;
  return toUnits(a.granted ?? a.amount);
}

/** The goal's budget committed to allocations of `kind`, leaving out `except`. */
export function committed(state: HierarchyState, goal: GoalState, kind: ResourceKind, except?: string): bigint {
  let sum = 0n;
  for (const a of goal.allocations.values())
    if (a.kind === kind && a.requestId !== except) sum += held(state, goal.goalId, a);
  return sum;
}

function answer(e: ResourceRequested, state: HierarchyState, ctx: DecisionContext): Decision[] {
  if (!e.goalId) return [];
  const goal = state.goals.get(e.goalId);
  const allocation = goal?.allocations.get(e.requestId);
  if (!goal || !allocation || allocation.status !== "REQUESTED") return [];
  const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
  const policies = applicable(
    ctx.policies,
    "RESOURCE_ALLOCATION",
    e.envelope.occurredAt,
    e.requesterTier,
    task?.spec.domain ?? null,
    parseAllocationRules,
  );
  const what = `${e.taskId ? `task ${e.taskId}` : e.requesterId} asks ${e.amount} ${e.unit} of ${e.kind}`;
  const amount = toUnits(e.amount);
  const reasons: string[] = [];
  const denying: PolicyVersion[] = [];
  const deny = (p: PolicyVersion | null, reason: string) => {
    reasons.push(reason);
    if (p && !denying.includes(p)) denying.push(p);
  };
  // Rules are validated when written; a version that cannot be read (written by hand) denies.
  for (const { policy, problems } of policies)
    for (const problem of problems) deny(policy, cite(policy, "rules", problem));
  let available: bigint | null = null;
  if (e.kind === "BUDGET") {
    for (const { policy, rules } of policies)
      if (rules.maxTaskBudget !== undefined && amount > toUnits(rules.maxTaskBudget))
        deny(policy, cite(policy, "maxTaskBudget", `${what}, more than the maximum ${rules.maxTaskBudget}`));
    const enforcing = policies.find((p) => p.rules.enforceGoalBudget !== undefined);
    const defaulting = policies.find((p) => p.rules.defaultGoalBudget !== undefined);
    const budget = goal.budget ?? defaulting?.rules.defaultGoalBudget ?? null;
    if (budget !== null && (enforcing?.rules.enforceGoalBudget ?? true)) {
      const used = committed(state, goal, "BUDGET", e.requestId);
      available = toUnits(budget) - used;
      if (available < 0n) available = 0n;
      if (amount > available) {
        const source =
          goal.budget !== null
            ? ""
            : ` (the default of policy "${defaulting!.policy.policyId}" v${defaulting!.policy.version})`;
        deny(
          goal.budget !== null ? (enforcing?.policy ?? null) : defaulting!.policy,
          `budget exhausted: goal ${goal.goalId} has a budget of ${budget}${source}, ${formatCost(used)} is committed and ${formatCost(available)} left; ${what}`,
        );
      }
    }
  } else {
    for (const { policy, rules } of policies) {
      const quota = rules.quotas?.[e.kind];
      if (quota === undefined) continue;
      const used = committed(state, goal, e.kind, e.requestId);
      const left = toUnits(quota) - used;
      available = available === null || left < available ? (left < 0n ? 0n : left) : available;
      if (amount > left)
        deny(
          policy,
          cite(
            policy,
            "quotas",
            `goal ${goal.goalId} may use ${quota} of ${e.kind}, ${formatCost(used)} is granted; ${what}`,
          ),
        );
    }
  }
  const consulted = policies.map((p) => refOf(p.policy));
  const aggregate = { type: "GOAL" as const, id: e.goalId };
  const out: Decision[] = [];
  if (reasons.length > 0)
    out.push(
      decision(
        "ResourceDenied",
        {
          requestId: e.requestId,
          goalId: e.goalId,
          taskId: e.taskId,
          requesterId: e.requesterId,
          kind: e.kind,
          requestedAmount: e.amount,
          unit: e.unit,
          availableAmount: available === null ? null : formatCost(available),
          reasons,
          consultedPolicies: denying.length > 0 ? denying.map(refOf) : consulted,
        },
        RESOURCE_MANAGER,
        aggregate,
      ),
    );
  else
    out.push(
      decision(
        "ResourceAllocated",
        {
          requestId: e.requestId,
          allocationId: `alloc-${e.requestId}`,
          goalId: e.goalId,
          taskId: e.taskId,
          requesterId: e.requesterId,
          kind: e.kind,
          requestedAmount: e.amount,
          grantedAmount: e.amount,
          unit: e.unit,
          expiresAt: null,
          consultedPolicies: consulted,
        },
        RESOURCE_MANAGER,
        aggregate,
      ),
    );
  if (policies.length > 0) {
    const deciding = denying[0] ?? policies[0]!.policy;
    out.push(
      decision(
        "PolicyEvaluated",
        {
          goalId: e.goalId,
          subject: { type: "ResourceRequested", id: e.requestId, agentId: e.requesterId },
          category: "RESOURCE_ALLOCATION",
          policyId: deciding.policyId,
          policyVersion: deciding.version,
          decision: reasons.length > 0 ? "DENY" : "ALLOW",
          consultedPolicies: consulted,
          reasons:
            reasons.length > 0
              ? reasons
              : [
                  `${what}: granted under ${policies.map((p) => `"${p.policy.policyId}" v${p.policy.version}`).join(", ")}${available !== null ? `, ${formatCost(available)} was left` : ""}`,
                ],
        },
        RESOURCE_MANAGER,
        aggregate,
      ),
    );
  }
  return out;
}

// ---- performance SLAs -------------------------------------------------------------------------

interface Breach {
  policy: PolicyVersion;
  metric: string;
  observed: number;
  threshold: number;
  windowMs: number;
  severity: Severity;
  reason: string;
}

function checkPerformance(
  input: Extract<TierInput, { type: "TaskCompleted" | "TaskFailed" }>,
  state: HierarchyState,
  ctx: DecisionContext,
): Decision[] {
  const e: TaskCompleted | TaskFailed = input.value;
  const goal = state.goals.get(e.goalId);
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  if (!goal) return [];
  const domain = task?.spec.domain ?? null;
  const policies = applicable(
    ctx.policies,
    "PERFORMANCE",
    e.envelope.occurredAt,
    "WORKER",
    domain,
    parsePerformanceRules,
  );
  if (policies.length === 0) return [];
  const attempt = `task ${e.taskId} attempt ${e.attempt} on ${e.agentId}`;
  const breaches: Breach[] = [];
  for (const { policy, rules, problems } of policies) {
    if (problems.length > 0) continue; // validated when written; an unreadable version sets no SLA
    const severity = rules.severity ?? "WARNING";
    if (rules.maxTaskDurationMs !== undefined && e.durationMs !== null && e.durationMs > rules.maxTaskDurationMs)
      breaches.push({
        policy,
        metric: "task_duration_ms",
        observed: e.durationMs,
        threshold: rules.maxTaskDurationMs,
        windowMs: e.durationMs,
        severity,
        reason: cite(
          policy,
          "maxTaskDurationMs",
          `${attempt} took ${e.durationMs} ms, more than ${rules.maxTaskDurationMs} ms`,
        ),
      });
    if (rules.minSuccessRate !== undefined && input.type === "TaskFailed") {
      let completed = 0;
      let failures = 0;
      for (const id of goal.taskIds) {
        const t = state.tasks.get(taskKey(goal.goalId, id));
        if (!t) continue;
        if (t.status === "COMPLETED") completed++;
        failures += t.failures.length;
      }
      const samples = completed + failures;
      const rate = samples === 0 ? 1 : completed / samples;
      if (samples >= (rules.minSamples ?? 1) && rate < rules.minSuccessRate)
        breaches.push({
          policy,
          metric: "success_rate",
          observed: rate,
          threshold: rules.minSuccessRate,
          windowMs: Math.max(0, e.envelope.occurredAt.getTime() - goal.submittedAt.getTime()),
          severity,
          reason: cite(
            policy,
            "minSuccessRate",
            `goal ${goal.goalId}: ${completed} of ${samples} ended attempts succeeded (${rate.toFixed(2)}), below ${rules.minSuccessRate}`,
          ),
        });
    }
  }
  const alertIdOf = (b: Breach) =>
    `perf-${e.goalId}-${e.taskId}-${e.attempt}-${b.metric}-${b.policy.policyId}@${b.policy.version}`;
  const fresh = breaches.filter((b) => !goal.alerts.has(alertIdOf(b)));
  if (fresh.length === 0) return [];
  const aggregate = { type: "GOAL" as const, id: e.goalId };
  const out: Decision[] = fresh.map((b) =>
    decision(
      "PerformanceAlert",
      {
        alertId: alertIdOf(b),
        goalId: e.goalId,
        agentId: e.agentId,
        tier: "WORKER",
        domain,
        metric: b.metric,
        observed: b.observed,
        threshold: b.threshold,
        windowMs: b.windowMs,
        severity: b.severity,
        policyId: b.policy.policyId,
        message: b.reason,
      },
      RESOURCE_MANAGER,
      aggregate,
    ),
  );
  out.push(
    decision(
      "PolicyEvaluated",
      {
        goalId: e.goalId,
        subject: { type: input.type, id: `${e.goalId}/${e.taskId}#${e.attempt}`, agentId: e.agentId },
        category: "PERFORMANCE",
        policyId: fresh[0]!.policy.policyId,
        policyVersion: fresh[0]!.policy.version,
        decision: "WARN",
        consultedPolicies: policies.map((p) => refOf(p.policy)),
        reasons: fresh.map((b) => b.reason),
      },
      RESOURCE_MANAGER,
      aggregate,
    ),
  );
  return out;
}
