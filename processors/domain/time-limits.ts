/**
 * Time limits: how long one attempt of a task may run on its worker, and when a goal must be done.
 *
 * - A task's limit is its own `timeoutMs` (TaskSpec), else its worker group's `timeoutMs` (the
 *   topology file), else none. The dispatcher (mayor, dgm sub-master) writes the limit into the
 *   TaskAssigned that hands an attempt to a worker, so the log says which limit each attempt ran
 *   under, and the attempt's clock starts at that assignment (a hung external agent that never
 *   accepts is timed out too). When an attempt held by a worker has run longer than its limit, its
 *   dispatcher writes TaskTimedOut; reading that back it retries or escalates (EscalationKind
 *   TIMEOUT) exactly as after a retryable TaskFailed (dispatch.ts handleFailure), and the worker's
 *   host aborts the execution it no longer holds.
 * - A goal's deadline (SubmitGoal.deadline) is watched by the top (president.ts): once
 *   `atRiskFraction` of the time from submission to the deadline has passed with the goal still
 *   running it raises one DEADLINE_AT_RISK escalation (to the operators: SYSTEM); when the deadline
 *   passes it does what `onMiss` says: `fail` the goal (its open tasks cancelled, as any failed
 *   goal's), or `warn` (one more escalation, and the goal goes on). The topology sets both
 *   (`deadlines`); a goal may override them with its constraints `deadlineAtRisk` and
 *   `onDeadlineMiss`.
 *
 * Time comes in as an input (ClockTicked, decider.ts), never from a clock in here.
 */
import type { Decision, DecisionContext } from "./decider.js";
import { decision } from "./decider.js";
import type { AgentInfo } from "./directory.js";
import type { TaskSpec, Topology } from "../../schemas/generated/types.js";
import type { GoalState, HierarchyState, TaskState } from "./kernel/state.js";

/** What a goal's missed deadline leads to. */
export const DEADLINE_MISS_OUTCOMES = ["fail", "warn"] as const;
export type DeadlineMiss = (typeof DEADLINE_MISS_OUTCOMES)[number];

export interface DeadlineSettings {
  /** Part (0 < f < 1) of the time from submission to the deadline after which the goal is at risk. */
  atRiskFraction: number;
  /** `fail` (default): GoalFailed when the deadline passes; `warn`: an escalation, and the goal goes on. */
  onMiss: DeadlineMiss;
}

export const DEFAULT_DEADLINES: Readonly<DeadlineSettings> = Object.freeze({ atRiskFraction: 0.8, onMiss: "fail" });

/** The longest time limit a task or a worker group may set: 30 days. */
export const MAX_TIMEOUT_MS = 30 * 24 * 3600 * 1000;

/** Goal constraints that override the topology's deadline settings for one goal. */
export const AT_RISK_CONSTRAINT = "deadlineAtRisk";
export const ON_MISS_CONSTRAINT = "onDeadlineMiss";

/** A topology's time limits, as its configuration sets them (topology.ts `timeLimitsOf`). */
export interface TimeLimits {
  /** The `timeoutMs` of the worker group of a domain and specialization; null for none. */
  groupTimeoutMs(domain: string | null, specialization: string | null): number | null;
  deadlines: DeadlineSettings;
}

export const NO_TIME_LIMITS: TimeLimits = Object.freeze({
  groupTimeoutMs: () => null,
  deadlines: DEFAULT_DEADLINES,
});

/** The time limits in force for `topology`: the context's, else none (and the default deadline settings). */
export function timeLimitsFor(ctx: Pick<DecisionContext, "timeLimits">, topology: Topology): TimeLimits {
  return ctx.timeLimits?.(topology) ?? NO_TIME_LIMITS;
}

/** The limit of an attempt of `spec` on `worker`: the task's own, else its worker group's, else null (none). */
export function attemptTimeout(
  spec: TaskSpec,
  worker: AgentInfo,
  ctx: Pick<DecisionContext, "timeLimits">,
): number | null {
  return spec.timeoutMs ?? timeLimitsFor(ctx, worker.topology).groupTimeoutMs(worker.domain, worker.specialization);
}

/** What is wrong with a time limit given as `where`, or null when it is a whole number of ms from 1 to 30 days. */
export function timeoutProblem(where: string, value: unknown): string | null {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_TIMEOUT_MS
    ? null
    : `${where} must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (30 days), got ${JSON.stringify(value)}`;
}

/** What is wrong with deadline settings given as `where` (all fields optional). */
export function deadlineProblems(where: string, raw: unknown): string[] {
  if (raw === undefined) return [];
  const d = raw as Partial<DeadlineSettings> | null;
  if (!d || typeof d !== "object" || Array.isArray(d))
    return [`${where}: give { atRiskFraction: 0..1, onMiss: fail | warn }`];
  const problems: string[] = [];
  if (d.atRiskFraction !== undefined && !validFraction(d.atRiskFraction))
    problems.push(
      `${where}.atRiskFraction must be a number between 0 and 1 (exclusive), got ${JSON.stringify(d.atRiskFraction)}`,
    );
  if (d.onMiss !== undefined && !(DEADLINE_MISS_OUTCOMES as readonly unknown[]).includes(d.onMiss))
    problems.push(
      `${where}.onMiss must be one of ${DEADLINE_MISS_OUTCOMES.join(", ")}, got ${JSON.stringify(d.onMiss)}`,
    );
  return problems;
}

const validFraction = (f: unknown): f is number => typeof f === "number" && f > 0 && f < 1;

/**
 * A goal's deadline settings: the topology's, overridden by its constraints `deadlineAtRisk` (a
 * fraction) and `onDeadlineMiss` (fail, warn). `problems` names a constraint that is not valid
 * (the president rejects such a goal at submission).
 */
export function deadlineSettingsOf(
  constraints: Record<string, string>,
  base: DeadlineSettings,
): { settings: DeadlineSettings; problems: string[] } {
  const problems: string[] = [];
  const settings = { ...base };
  const fraction = constraints[AT_RISK_CONSTRAINT];
  if (fraction !== undefined) {
    const f = Number(fraction);
    if (fraction.trim() !== "" && validFraction(f)) settings.atRiskFraction = f;
    else
      problems.push(`constraint ${AT_RISK_CONSTRAINT} must be a number between 0 and 1 (exclusive), got "${fraction}"`);
  }
  const onMiss = constraints[ON_MISS_CONSTRAINT];
  if (onMiss !== undefined) {
    if ((DEADLINE_MISS_OUTCOMES as readonly string[]).includes(onMiss)) settings.onMiss = onMiss as DeadlineMiss;
    else
      problems.push(
        `constraint ${ON_MISS_CONSTRAINT} must be one of ${DEADLINE_MISS_OUTCOMES.join(", ")}, got "${onMiss}"`,
      );
  }
  return { settings, problems };
}

/** When a goal's deadline is at risk: submission + atRiskFraction x (deadline - submission). */
export function atRiskAt(goal: Pick<GoalState, "submittedAt">, deadline: Date, settings: DeadlineSettings): Date {
  const from = goal.submittedAt.getTime();
  return new Date(from + Math.floor(settings.atRiskFraction * Math.max(0, deadline.getTime() - from)));
}

/** Whether a partition's state has anything for the clock to watch: an attempt under a limit, a goal deadline. */
export function watchesTime(state: Pick<HierarchyState, "timed" | "deadlines">): boolean {
  return state.timed.size > 0 || state.deadlines.size > 0;
}

const HELD: ReadonlySet<string> = new Set(["ASSIGNED", "ACCEPTED", "RUNNING"]);

/**
 * TaskTimedOut for every attempt held by a worker longer than its limit at `now`, written by the
 * attempt's dispatcher when this host acts for it (`holder` names it at this tier, `hosted`
 * returns it). Only the attempts under a limit are looked at (state.timed), oldest task first.
 * An attempt already timed out, completed, failed or moved is no longer held, so a tick decided
 * again adds nothing.
 */
export function timedOutAttempts(
  state: HierarchyState,
  now: Date,
  ctx: DecisionContext,
  holder: (t: TaskState) => string | null,
  hosted: (agentId: string, ctx: DecisionContext) => AgentInfo | null,
): Decision[] {
  if (state.timed.size === 0) return [];
  const out: Decision[] = [];
  for (const key of [...state.timed].sort()) {
    const task = state.tasks.get(key);
    const limit = task?.limit;
    if (!task || !limit || !task.workerId || limit.attempt !== task.attempt || !HELD.has(task.status)) continue;
    const elapsedMs = now.getTime() - limit.since.getTime();
    if (elapsedMs <= limit.timeoutMs) continue;
    const dispatcherId = holder(task);
    const me = dispatcherId ? hosted(dispatcherId, ctx) : null;
    if (!me) continue;
    out.push(
      decision(
        "TaskTimedOut",
        {
          goalId: task.goalId,
          taskId: task.spec.id,
          agentId: task.workerId,
          attempt: task.attempt,
          timeoutMs: limit.timeoutMs,
          elapsedMs,
        },
        { id: me.agentId, tier: me.tier },
        { type: "TASK", id: task.spec.id },
      ),
    );
  }
  return out;
}
