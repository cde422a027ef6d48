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
 *     "quotas": { "API_QUOTA": "1000" }, // per goal: total granted of a kind (not BUDGET) at most this
 *     "computePerTask": "30",          // COMPUTATIONAL units (cpu-seconds) a governor asks per task
 *     "maxConcurrentTasks": 2          // AGENT_CAPACITY: tasks of a goal running at once (in the
 *                                      //   policy's domains when it names some, else in all)
 *   }
 *
 * ## Computational units and agent capacity
 *
 * Where an applicable policy sets `computePerTask` or `quotas.COMPUTATIONAL`, the governor (or
 * sub-master) also asks COMPUTATIONAL units for each task (requestId `res-<goal>-<task>-COMPUTATIONAL`,
 * `computePerTask`, default 1, unit cpu-seconds): the goal's quota is consumed by every allocation
 * except a cancelled task's. Where one sets `maxConcurrentTasks` or `quotas.AGENT_CAPACITY`, it asks
 * one AGENT_CAPACITY slot per task (`res-<goal>-<task>-AGENT_CAPACITY`, unit tasks), held while the
 * task is open and released when it completes or is cancelled. Where one sets `quotas.API_QUOTA`,
 * it asks one API_QUOTA call per task (`res-<goal>-<task>-API_QUOTA`, unit calls): a reservation,
 * settled when the task completes to the model calls its attempts made (TaskCompleted/TaskFailed
 * `usage.calls`; 0 for a task no model did), so the goal's quota counts real model calls. A task is handed down once all of
 * its requests are allocated. A capacity request that does not fit now waits (no answer) and is
 * granted when a slot is released, the most urgent first, then the earliest.
 *
 * ## Conflicts between governors (the resource manager rules for the president / master)
 *
 * - A BUDGET or COMPUTATIONAL request that the goal's limit cannot cover while another governor
 *   (or sub-master) holds part of it: ConflictRaised (RESOURCE_CONTENTION, both parties, both
 *   tasks, resolver the top), ConflictResolved in favour of the holder (a grant is never withdrawn:
 *   it was the earlier request), and the request's ResourceDenied names the conflict.
 * - Capacity freed while requests of different governors wait and not all fit: ConflictRaised and
 *   ConflictResolved in favour of the higher priority, then the earlier request; the winner gets
 *   ResourceAllocated, the loser waits for the next free slot (a capacity request is never denied
 *   for contention: the slot comes back).
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
import { refOf, type PolicyBook, type PolicyVersion } from "./policies/book.js";
import { type Allocation, type GoalState, type HierarchyState, type TaskState } from "./kernel/state.js";
import { formatCost, toUnits } from "./kernel/costs.js";
import { taskKey } from "./kernel/keys.js";
import { parseRulesObject, ruleChecker } from "./policies/rules.js";

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
  computePerTask?: string;
  maxConcurrentTasks?: number;
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
  computePerTask: true,
  maxConcurrentTasks: true,
};
const PERFORMANCE_KEYS: Record<keyof PerformanceRules, true> = {
  maxTaskDurationMs: true,
  minSuccessRate: true,
  minSamples: true,
  severity: true,
};

type Parsed<R> = { rules: R; problems: string[] };

function unknownKeys(r: Record<string, unknown>, known: object, category: string, problems: string[]) {
  const names = Object.keys(known);
  for (const key of Object.keys(r))
    if (!names.includes(key)) problems.push(`unknown rule "${key}"; ${category} rules are ${names.join(", ")}`);
}

export function parseAllocationRules(rules: string): Parsed<AllocationRules> {
  const { raw: r, problems } = parseRulesObject(rules);
  if (!r) return { rules: {}, problems };
  const check = ruleChecker(r, problems);
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
  check("computePerTask", isDecimal, decimal);
  check("maxConcurrentTasks", (v) => Number.isInteger(v) && (v as number) >= 1, "a whole number, at least 1");
  unknownKeys(r, ALLOCATION_KEYS, "resource allocation", problems);
  return { rules: problems.length === 0 ? (r as AllocationRules) : {}, problems };
}

export function parsePerformanceRules(rules: string): Parsed<PerformanceRules> {
  const { raw: r, problems } = parseRulesObject(rules);
  if (!r) return { rules: {}, problems };
  const check = ruleChecker(r, problems);
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

export const requestIdOf = (goalId: string, taskId: string, kind: ResourceKind = "BUDGET") =>
  kind === "BUDGET" ? `res-${goalId}-${taskId}` : `res-${goalId}-${taskId}-${kind}`;

export const COMPUTE_UNIT = "cpu-seconds";
export const CAPACITY_UNIT = "tasks";
const UNITS: Record<ResourceKind, string> = {
  BUDGET: BUDGET_UNIT,
  COMPUTATIONAL: COMPUTE_UNIT,
  AGENT_CAPACITY: CAPACITY_UNIT,
  API_QUOTA: "calls",
};

/**
 * Every request a governor or sub-master makes for a task it holds before handing it down: its
 * budget (budgetRequestFor), and the computational units and the capacity slot a policy applying
 * to it sets quotas for. Empty without a RESOURCE_ALLOCATION policy.
 */
export function resourceRequestsFor(
  task: TaskState,
  requester: { agentId: string; tier: Tier },
  book: PolicyBook,
): Decision[] {
  const budget = budgetRequestFor(task, requester, book);
  if (!budget || !task.heldSince) return [];
  const policies = applicable(
    book,
    "RESOURCE_ALLOCATION",
    task.heldSince,
    requester.tier,
    task.spec.domain,
    parseAllocationRules,
  );
  const out = [budget];
  const compute = policies.find((p) => p.rules.computePerTask !== undefined);
  if (compute || policies.some((p) => p.rules.quotas?.COMPUTATIONAL !== undefined))
    out.push(
      kindRequest(
        task,
        requester,
        "COMPUTATIONAL",
        compute ? formatCost(toUnits(compute.rules.computePerTask!)) : "1.0000",
        compute
          ? `the computational units per task of policy "${compute.policy.policyId}" v${compute.policy.version}`
          : "the default computational units per task",
      ),
    );
  if (policies.some((p) => p.rules.maxConcurrentTasks !== undefined || p.rules.quotas?.AGENT_CAPACITY !== undefined))
    out.push(kindRequest(task, requester, "AGENT_CAPACITY", "1.0000", "one concurrent task"));
  if (policies.some((p) => p.rules.quotas?.API_QUOTA !== undefined))
    out.push(kindRequest(task, requester, "API_QUOTA", "1.0000", "one model call reserved, settled to the calls made"));
  return out;
}

function kindRequest(
  task: TaskState,
  requester: { agentId: string; tier: Tier },
  kind: ResourceKind,
  amount: string,
  why: string,
): Decision {
  return decision(
    "ResourceRequested",
    {
      requestId: requestIdOf(task.goalId, task.spec.id, kind),
      goalId: task.goalId,
      taskId: task.spec.id,
      requesterId: requester.agentId,
      requesterTier: requester.tier,
      kind,
      amount,
      unit: UNITS[kind],
      durationMs: null,
      priority: task.priority,
      justification: `task ${task.spec.id} (${task.spec.title}): ${why}`,
    },
    { id: requester.agentId, tier: requester.tier },
    { type: "GOAL", id: task.goalId },
  );
}

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
        return answer(requestOf(input.value), state, ctx);
      case "TaskCompleted":
        return [...checkPerformance(input, state, ctx), ...grantWaiting(input.value.goalId, state, ctx)];
      case "TaskCancelled":
        return grantWaiting(input.value.goalId, state, ctx);
      case "TaskFailed":
        return checkPerformance(input, state, ctx);
      default:
        return [];
    }
  },
};

/**
 * What an allocation holds of its goal's limit now: BUDGET as in the module's point 3, a completed
 * task's COMPUTATIONAL (and API_QUOTA) units stay consumed, its AGENT_CAPACITY slot is released;
 * a cancelled task holds nothing. An API_QUOTA allocation of a completed task holds the model
 * calls its attempts made.
 */
function held(state: HierarchyState, goalId: string, a: Allocation): bigint {
  if (a.status !== "ALLOCATED") return 0n;
  const task = a.taskId ? state.tasks.get(taskKey(goalId, a.taskId)) : undefined;
  if (task?.status === "CANCELLED") return 0n;
  if (task?.status === "COMPLETED") {
    if (a.kind === "BUDGET") return toUnits(task.cost);
    if (a.kind === "AGENT_CAPACITY") return 0n;
    // The model calls its attempts actually made (a task that made none releases its reservation).
    if (a.kind === "API_QUOTA") return toUnits(String(task.modelCalls));
  }
  return toUnits(a.granted ?? a.amount);
}

/** The goal's budget committed to allocations of `kind`, leaving out `except` (and, given `domains`, other domains' tasks). */
export function committed(
  state: HierarchyState,
  goal: GoalState,
  kind: ResourceKind,
  except?: string,
  domains: string[] = [],
): bigint {
  let sum = 0n;
  for (const a of goal.allocations.values())
    if (a.kind === kind && a.requestId !== except && inDomains(state, goal.goalId, a, domains))
      sum += held(state, goal.goalId, a);
  return sum;
}

function inDomains(state: HierarchyState, goalId: string, a: Allocation, domains: string[]): boolean {
  if (domains.length === 0) return true;
  const task = a.taskId ? state.tasks.get(taskKey(goalId, a.taskId)) : undefined;
  return !!task && domains.includes(task.spec.domain);
}

/** A request to answer: as written, or as folded when a waiting one is taken up again. */
interface Request {
  requestId: string;
  goalId: string | null;
  taskId: string | null;
  requesterId: string;
  requesterTier: Tier;
  kind: ResourceKind;
  amount: string;
  unit: string;
  at: Date;
}

function requestOf(e: ResourceRequested): Request {
  return { ...e, at: e.envelope.occurredAt };
}

/** The allocations (of other requesters) holding part of a limit, for a conflict. */
type Holders = Allocation[];

interface Verdict {
  reasons: string[];
  denying: PolicyVersion[];
  available: bigint | null;
  policies: { policy: PolicyVersion; rules: AllocationRules; problems: string[] }[];
  /** AGENT_CAPACITY only: the request does not fit now, but will when a slot is released. */
  waits: boolean;
  /** Other requesters' allocations holding part of the limit that denied the request. */
  holders: Holders;
}

function judge(e: Request, goal: GoalState, state: HierarchyState, ctx: DecisionContext, extra = 0n): Verdict {
  const task = e.taskId ? state.tasks.get(taskKey(goal.goalId, e.taskId)) : undefined;
  const policies = applicable(
    ctx.policies,
    "RESOURCE_ALLOCATION",
    e.at,
    e.requesterTier,
    task?.spec.domain ?? null,
    parseAllocationRules,
  );
  const what = `${e.taskId ? `task ${e.taskId}` : e.requesterId} asks ${e.amount} ${e.unit} of ${e.kind}`;
  const amount = toUnits(e.amount);
  const reasons: string[] = [];
  const denying: PolicyVersion[] = [];
  const holders: Holders = [];
  const othersHolding = (domains: string[] = []) => {
    for (const a of goal.allocations.values())
      if (
        a.kind === e.kind &&
        a.requesterId !== e.requesterId &&
        held(state, goal.goalId, a) > 0n &&
        inDomains(state, goal.goalId, a, domains) &&
        !holders.includes(a)
      )
        holders.push(a);
  };
  const deny = (p: PolicyVersion | null, reason: string) => {
    reasons.push(reason);
    if (p && !denying.includes(p)) denying.push(p);
  };
  // Rules are validated when written; a version that cannot be read (written by hand) denies.
  for (const { policy, problems } of policies)
    for (const problem of problems) deny(policy, cite(policy, "rules", problem));
  let available: bigint | null = null;
  let waits = false;
  if (e.kind === "BUDGET") {
    for (const { policy, rules } of policies)
      if (rules.maxTaskBudget !== undefined && amount > toUnits(rules.maxTaskBudget))
        deny(policy, cite(policy, "maxTaskBudget", `${what}, more than the maximum ${rules.maxTaskBudget}`));
    const enforcing = policies.find((p) => p.rules.enforceGoalBudget !== undefined);
    const defaulting = policies.find((p) => p.rules.defaultGoalBudget !== undefined);
    const budget = goal.budget ?? defaulting?.rules.defaultGoalBudget ?? null;
    if (budget !== null && (enforcing?.rules.enforceGoalBudget ?? true)) {
      const used = committed(state, goal, "BUDGET", e.requestId) + extra;
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
        othersHolding();
      }
    }
  } else {
    for (const { policy, rules } of policies) {
      const capacity =
        e.kind === "AGENT_CAPACITY" && rules.maxConcurrentTasks !== undefined
          ? { rule: "maxConcurrentTasks", limit: `${rules.maxConcurrentTasks}` }
          : null;
      const quota = rules.quotas?.[e.kind];
      for (const limit of [
        ...(quota !== undefined ? [{ rule: "quotas", limit: quota }] : []),
        ...(capacity ? [capacity] : []),
      ]) {
        const domains = e.kind === "AGENT_CAPACITY" ? policy.domains : [];
        const used = committed(state, goal, e.kind, e.requestId, domains) + extra;
        const left = toUnits(limit.limit) - used;
        available = available === null || left < available ? (left < 0n ? 0n : left) : available;
        if (amount <= left) continue;
        // A capacity slot comes back when a task ends: the request waits, unless it can never fit.
        if (e.kind === "AGENT_CAPACITY" && amount <= toUnits(limit.limit)) {
          waits = true;
          continue;
        }
        deny(
          policy,
          cite(
            policy,
            limit.rule,
            `goal ${goal.goalId} may use ${limit.limit} of ${e.kind}${domains.length > 0 ? ` in ${domains.join(", ")}` : ""}, ${formatCost(used)} is granted; ${what}`,
          ),
        );
        if (e.kind === "COMPUTATIONAL") othersHolding();
      }
    }
  }
  return { reasons, denying, available, policies, waits: waits && reasons.length === 0, holders };
}

function answer(e: Request, state: HierarchyState, ctx: DecisionContext, extra = 0n): Decision[] {
  if (!e.goalId) return [];
  const goal = state.goals.get(e.goalId);
  const allocation = goal?.allocations.get(e.requestId);
  if (!goal || !allocation || allocation.status !== "REQUESTED") return [];
  const verdict = judge(e, goal, state, ctx, extra);
  if (verdict.waits) return [];
  return answerWith(e, goal, state, ctx, verdict);
}

function answerWith(e: Request, goal: GoalState, state: HierarchyState, ctx: DecisionContext, v: Verdict): Decision[] {
  const goalId = goal.goalId;
  const { reasons, denying, available, policies } = v;
  const what = `${e.taskId ? `task ${e.taskId}` : e.requesterId} asks ${e.amount} ${e.unit} of ${e.kind}`;
  const consulted = policies.map((p) => refOf(p.policy));
  const aggregate = { type: "GOAL" as const, id: goalId };
  const out: Decision[] = [];
  if (reasons.length > 0 && v.holders.length > 0) {
    const conflict = contention(e, goal, state, ctx, v.holders, consulted);
    out.push(...conflict.decisions);
    reasons.push(conflict.reason);
  }
  if (reasons.length > 0)
    out.push(
      decision(
        "ResourceDenied",
        {
          requestId: e.requestId,
          goalId,
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
          goalId,
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
          goalId,
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

/** The top of a goal's topology, on whose behalf the resource manager rules on conflicts. */
function resolverOf(goal: GoalState, ctx: DecisionContext): Actor {
  const top = ctx.directory.top(goal.topology);
  return top ? { id: top.agentId, tier: top.tier } : { id: RESOURCE_MANAGER.id, tier: "PRESIDENT" };
}

const conflictIdOf = (loser: string, winner: string) => `conflict-${loser}-vs-${winner}`;

function conflictDecisions(
  goal: GoalState,
  ctx: DecisionContext,
  conflictId: string,
  kind: ResourceKind,
  winner: { requesterId: string; taskId: string | null; requestId: string },
  losers: { requesterId: string; taskId: string | null; requestId: string }[],
  description: string,
  resolution: string,
  actions: string[],
  consulted: ReturnType<typeof refOf>[],
): Decision[] {
  const resolver = resolverOf(goal, ctx);
  const parties = [...new Set([winner.requesterId, ...losers.map((l) => l.requesterId)])];
  const taskIds = [winner, ...losers].map((r) => r.taskId).filter((t): t is string => !!t);
  const aggregate = { type: "GOAL" as const, id: goal.goalId };
  void kind;
  return [
    decision(
      "ConflictRaised",
      {
        conflictId,
        goalId: goal.goalId,
        kind: "RESOURCE_CONTENTION",
        partyAgentIds: parties,
        taskIds,
        description,
        resolverTier: resolver.tier,
        resolverAgentId: resolver.id,
      },
      RESOURCE_MANAGER,
      aggregate,
    ),
    decision(
      "ConflictResolved",
      {
        conflictId,
        goalId: goal.goalId,
        resolution,
        winnerAgentId: winner.requesterId,
        actions,
        consultedPolicies: consulted,
      },
      resolver,
      aggregate,
    ),
  ];
}

/**
 * A request another governor's grant stands in the way of: the president's ruling (made by the
 * resource manager on its behalf) keeps the grant, which came first and is never withdrawn.
 */
function contention(
  e: Request,
  goal: GoalState,
  state: HierarchyState,
  ctx: DecisionContext,
  holders: Holders,
  consulted: ReturnType<typeof refOf>[],
): { decisions: Decision[]; reason: string } {
  const first = [...holders].sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime())[0]!;
  const conflictId = conflictIdOf(e.requestId, first.requestId);
  const claims = holders
    .map((a) => `${a.requesterId} holds ${formatCost(held(state, goal.goalId, a))} for task ${a.taskId ?? "-"}`)
    .join(", ");
  const reason = `conflict ${conflictId} (RESOURCE_CONTENTION over the goal's ${e.kind}) resolved for ${first.requesterId}: ${claims}; granted claims are kept, the later request loses`;
  if (goal.conflicts.has(conflictId)) return { decisions: [], reason };
  return {
    reason,
    decisions: conflictDecisions(
      goal,
      ctx,
      conflictId,
      e.kind,
      first,
      [e],
      `${e.requesterId} asks ${e.amount} ${e.unit} of ${e.kind} for task ${e.taskId ?? "-"}, which goal ${goal.goalId}'s limit cannot cover while ${claims}`,
      `for ${first.requesterId}: its claim was granted first (${first.requestedAt.toISOString()}) and is kept; ${e.requesterId}'s request is denied`,
      [`deny ${e.requestId}`, `keep ${holders.map((a) => a.requestId).join(", ")}`],
      consulted,
    ),
  };
}

/**
 * Capacity was released (a task completed or was cancelled): the waiting capacity requests of the
 * goal are taken up again, most urgent first, then the earliest. When the freed slots cannot take
 * every waiting request and they come from different governors, the conflict is raised and ruled
 * (for the president) in favour of the request served; the others keep waiting.
 */
function grantWaiting(goalId: string, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const goal = state.goals.get(goalId);
  if (!goal) return [];
  const priorityOf = (a: Allocation) => (a.taskId ? (state.tasks.get(taskKey(goalId, a.taskId))?.priority ?? 0) : 0);
  const waiting = [...goal.allocations.values()]
    .filter((a) => a.kind === "AGENT_CAPACITY" && a.status === "REQUESTED")
    .filter((a) => {
      const t = a.taskId ? state.tasks.get(taskKey(goalId, a.taskId)) : undefined;
      return !t || (t.status !== "COMPLETED" && t.status !== "CANCELLED");
    })
    .sort((a, b) => priorityOf(b) - priorityOf(a) || a.requestedAt.getTime() - b.requestedAt.getTime());
  if (waiting.length === 0) return [];
  const out: Decision[] = [];
  let extra = 0n;
  const served: Allocation[] = [];
  for (const a of waiting) {
    const request: Request = {
      requestId: a.requestId,
      goalId,
      taskId: a.taskId,
      requesterId: a.requesterId,
      requesterTier: ctx.directory.get(a.requesterId)?.tier ?? "GOVERNOR",
      kind: a.kind,
      amount: a.amount,
      unit: CAPACITY_UNIT,
      at: a.requestedAt,
    };
    const verdict = judge(request, goal, state, ctx, extra);
    if (!verdict.waits) {
      out.push(...answerWith(request, goal, state, ctx, verdict));
      if (verdict.reasons.length === 0) {
        extra += toUnits(a.amount);
        served.push(a);
      }
      continue;
    }
    // Waits: a request of another governor took the slot it could have had.
    const winner = served.find((w) => w.requesterId !== a.requesterId);
    if (!winner) continue;
    const conflictId = conflictIdOf(a.requestId, winner.requestId);
    if (goal.conflicts.has(conflictId)) continue;
    const why =
      priorityOf(winner) > priorityOf(a)
        ? `higher priority (${priorityOf(winner)} over ${priorityOf(a)})`
        : `the same priority (${priorityOf(a)}) and the earlier request (${winner.requestedAt.toISOString()})`;
    out.push(
      ...conflictDecisions(
        goal,
        ctx,
        conflictId,
        a.kind,
        winner,
        [a],
        `${winner.requesterId} (task ${winner.taskId ?? "-"}) and ${a.requesterId} (task ${a.taskId ?? "-"}) wait for goal ${goalId}'s capacity, and the slot released takes one of them`,
        `for ${winner.requesterId}: ${why}; ${a.requesterId}'s task waits for the next free slot`,
        [`allocate ${winner.requestId}`, `keep ${a.requestId} waiting`],
        verdict.policies.map((p) => refOf(p.policy)),
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
