/**
 * Dispatch to workers, shared by the mayor (aamas) and the sub-master (dgm), the two tiers that
 * hand tasks to workers: waiting tasks go out in priority order (then first come, first served),
 * each to the least-loaded fitting worker that has free capacity; a task waits when every fitting
 * worker is full. Failed attempts are retried elsewhere up to the task's limit, then escalated.
 *
 * SECURITY policies may restrict which tiers a dispatcher hands tasks to (`assignTo`, security.ts).
 * Each assignment a policy has a rule about is recorded with its PolicyEvaluated; one the policies
 * refuse is not made: the dispatcher escalates the task to its superior (POLICY_VIOLATION), once
 * per attempt, and leaves it waiting (the superior, unable to hand it elsewhere, passes it up and
 * the top fails the goal).
 */
import type { Actor, MessageTypeName } from "../../schemas/generated/types.js";
import { servesTenant, type AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext, type TierInput } from "./decider.js";
import { attemptInDelivery, deliveryOf, retryLimitsFor } from "./limits.js";
import { reportIfDone } from "./reports.js";
import {
  escalationKindOf,
  escalationRaised,
  exhaustedEscalationId,
  refusedEscalationId,
  superiorOf,
} from "./escalation.js";
import { checkAssignment, type AccessCheck } from "./policies/security.js";
import { GOAL_ENDS, loadOf, type HierarchyState, type TaskState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";
import { ATTEMPT_FAILED } from "./kernel/status.js";
import { attemptTimeout } from "./time-limits.js";

/** Kept here for callers that import it from dispatch; escalation.ts owns it. */
export { escalationKindOf };

/** What the two middle tiers (governor, mayor) read: their tasks' lifecycle and the messages about them. */
export const MIDDLE_TIER_READS: ReadonlySet<MessageTypeName> = new Set([
  // A goal's end lets its tasks go (state.ts `settle`).
  ...GOAL_ENDS,
  "TaskCreated",
  "TaskAssigned",
  "TaskCompleted",
  "TaskFailed",
  // A dispatcher's own TaskTimedOut (time-limits.ts) comes back to it, to be retried or escalated as a failure.
  "TaskTimedOut",
  "TaskRetried",
  "TaskCancelled",
  "EscalationRaised",
  "EscalationResolved",
  "ReportSubmitted",
  // Health: a dispatcher moves a failed worker's attempts (reassign.ts); the two Agent* facts reach
  // it through the directory, not its input topics.
  "TaskReassigned",
  "AgentFailed",
  "AgentRecovered",
  // A worker the scaler retired hands its open attempts back the same way; one it added gets work.
  "AgentTerminated",
  "AgentRegistered",
  // The conversation about a task (context.ts): a worker's claims on an attempt (a second worker
  // claiming one raises a conflict), context requests and peer queries, and their answers.
  "TaskAccepted",
  "TaskStarted",
  "ConflictRaised",
  "ConflictResolved",
  "ContextRequested",
  "ContextProvided",
  "QueryAsked",
  "QueryAnswered",
  // Refusals (a DENY), so a request refused is refused once (state.ts `refused`); on
  // polity.governance.events, which these tiers read too (hierarchy.ts).
  "PolicyEvaluated",
]);

/** The candidate with the lowest load; ties go to the smaller agent id, so every replay picks the same. */
export function leastLoaded(candidates: AgentInfo[], load: (a: AgentInfo) => number): AgentInfo {
  return candidates.reduce((best, a) => {
    const diff = load(a) - load(best);
    return diff < 0 || (diff === 0 && a.agentId < best.agentId) ? a : best;
  });
}

/** How a middle tier handles the end (or retry) of an attempt of a task it holds. */
export interface HolderRules {
  /** Which agent holds the task at this tier. */
  holder: (t: TaskState) => string | null;
  /** The agent when this host acts for it and it is of this tier. */
  hosted: (agentId: string, ctx: DecisionContext) => AgentInfo | null;
  /** Whether this agent hands tasks to workers itself, and so decides retries. */
  dispatches: (me: AgentInfo) => boolean;
  /**
   * Hands out what is waiting, now that a slot may be free; `at` is the time of the input it
   * follows from (the SECURITY policies in effect then are consulted).
   */
  handOut: (state: HierarchyState, me: AgentInfo, ctx: DecisionContext, at: Date) => Decision[];
}

/**
 * The limits a failed attempt is judged by (handleFailure): attempts per delivery, and deliveries
 * of the task in its domain (only a sub-master, its own domain tier, delivers again itself).
 */
export interface DeliveryLimits {
  perDelivery: number;
  deliveries: number;
}

/** The limits without a policy: the task's maxAttempts, the topology's `retries.domain`. */
export function defaultDeliveryLimits(task: TaskState, dispatcher: AgentInfo, ctx: DecisionContext): DeliveryLimits {
  return { perDelivery: task.maxAttempts, deliveries: retryLimitsFor(ctx, dispatcher.topology).domain };
}

type HeldTaskEvent = Extract<
  TierInput,
  { type: "TaskCompleted" | "TaskCancelled" | "TaskFailed" | "TaskTimedOut" | "TaskRetried" }
>;

/**
 * After an attempt of a held task ended or was retried: retry or escalate (by `limits`, an
 * ESCALATION policy's, else the defaults), report, hand out more.
 */
export function afterHeldTaskEvent(
  input: HeldTaskEvent,
  state: HierarchyState,
  ctx: DecisionContext,
  rules: HolderRules,
  limits?: DeliveryLimits,
): Decision[] {
  const { goalId, taskId } = input.value;
  const task = state.tasks.get(taskKey(goalId, taskId));
  const heldBy = task ? rules.holder(task) : null;
  const me = heldBy ? rules.hosted(heldBy, ctx) : null;
  if (!task || !me) return [];
  const out: Decision[] = [];
  if ((input.type === "TaskFailed" || input.type === "TaskTimedOut") && rules.dispatches(me))
    out.push(...handleFailure(state, me, goalId, taskId, ctx, limits ?? defaultDeliveryLimits(task, me, ctx)));
  if (input.type === "TaskCompleted") out.push(...reportIfDone(state, me, goalId, taskId, rules.holder, ctx));
  return [...out, ...rules.handOut(state, me, ctx, input.value.envelope.occurredAt)];
}

const taskRef = (taskId: string) => ({ type: "TASK" as const, id: taskId });

/** The open tasks a dispatcher holds that no worker has yet, most urgent first. */
export function waitingAt(
  state: HierarchyState,
  dispatcher: AgentInfo,
  below: (t: TaskState) => string | null,
): TaskState[] {
  const out: TaskState[] = [];
  for (const key of state.activeByAgent.get(dispatcher.agentId) ?? []) {
    const t = state.tasks.get(key);
    if (!t || below(t) !== null) continue;
    if (t.status === "ASSIGNED" || t.status === "READY") out.push(t);
  }
  return out.sort(byPriority);
}

/** Most urgent first; among equals, the goal's earlier task, then goal id for a stable order. */
export function byPriority(a: TaskState, b: TaskState): number {
  return b.priority - a.priority || a.seq - b.seq || a.goalId.localeCompare(b.goalId);
}

/**
 * Assigns waiting tasks of `dispatcher` to workers with free capacity; `ready` (a sub-master's
 * budget check, see governor.ts) may hold a task back. `at` is the time of the input the dispatch
 * follows from, for the SECURITY policies consulted; callers that do not pass it get the decision
 * time, which is never before it.
 */
export function dispatchToWorkers(
  state: HierarchyState,
  dispatcher: AgentInfo,
  ctx: DecisionContext,
  ready: (t: TaskState) => boolean = (t) => !t.allocation || t.allocation.status === "ALLOCATED",
  at: Date = ctx.now,
): Decision[] {
  const waiting = waitingAt(state, dispatcher, (t) => t.workerId).filter(ready);
  if (waiting.length === 0) return [];
  const load = new Map<string, number>();
  const loadOfWorker = (w: AgentInfo) => load.get(w.agentId) ?? loadOf(state, w.agentId);
  // One directory walk per specialization, not one per waiting task: queues can be long.
  const workersFor = new Map<string | null, AgentInfo[]>();
  const workersOf = (spec: string | null) => {
    let workers = workersFor.get(spec);
    if (!workers) workersFor.set(spec, (workers = ctx.directory.workersUnder(dispatcher.agentId, spec)));
    return workers;
  };
  const actor: Actor = { id: dispatcher.agentId, tier: dispatcher.tier };
  const out: Decision[] = [];
  for (const task of waiting) {
    // Refused once already: it waits for its superior's answer, and is not judged again.
    if (state.goals.get(task.goalId)?.escalations.has(policyEscalationId(task, dispatcher))) continue;
    const tenantId = state.goals.get(task.goalId)?.tenantId;
    const fitting = workersOf(task.spec.specialization).filter(
      (w) => loadOfWorker(w) < w.capacity && servesTenant(w, tenantId),
    );
    if (fitting.length === 0) continue; // waits for a slot
    const fresh = fitting.filter((w) => !task.failedOn.includes(w.agentId));
    const worker = leastLoaded(fresh.length > 0 ? fresh : fitting, loadOfWorker);
    const security = checkAssignment(
      {
        assigner: dispatcher,
        assigneeTier: worker.tier,
        assigneeId: worker.agentId,
        goalId: task.goalId,
        taskId: task.spec.id,
        domain: task.spec.domain,
        at,
      },
      ctx.policies,
    );
    if (security.verdict === "DENY") {
      out.push(...refusedAssignment(task, dispatcher, security, ctx));
      continue;
    }
    load.set(worker.agentId, loadOfWorker(worker) + 1);
    out.push(
      ...security.decisions,
      decision(
        "TaskAssigned",
        {
          goalId: task.goalId,
          taskId: task.spec.id,
          assigneeId: worker.agentId,
          assigneeTier: "WORKER",
          assignedBy: dispatcher.agentId,
          attempt: task.attempt,
          task: task.spec,
          priority: task.priority,
          timeoutMs: attemptTimeout(task.spec, worker, ctx),
        },
        actor,
        taskRef(task.spec.id),
      ),
    );
  }
  return out;
}

/** The escalation of a refused assignment of `task`'s current attempt by `dispatcher`: raised once. */
export const policyEscalationId = (task: TaskState, dispatcher: AgentInfo) =>
  refusedEscalationId(task.goalId, task.spec.id, task.attempt, dispatcher);

/**
 * A refused assignment: its DENY evaluation, and the task escalated to the dispatcher's superior
 * (POLICY_VIOLATION). Shared by every tier that hands tasks down (mayor, sub-master, governor).
 */
export function refusedAssignment(
  task: TaskState,
  dispatcher: AgentInfo,
  security: AccessCheck,
  ctx: DecisionContext,
): Decision[] {
  return [
    ...security.decisions,
    escalationRaised({
      escalationId: policyEscalationId(task, dispatcher),
      goalId: task.goalId,
      taskId: task.spec.id,
      kind: "POLICY_VIOLATION",
      from: dispatcher,
      to: superiorOf(dispatcher, ctx.directory),
      reason: `${dispatcher.name} may not hand task ${task.spec.id} to a ${dispatcher.tier === "GOVERNOR" ? "mayor" : "worker"}: ${security.reasons.join("; ")}`,
    }),
  ];
}

/**
 * After a failed attempt: retry elsewhere while the delivery has attempts left (`limits.perDelivery`:
 * the task's maxAttempts, from the topology's `retries.worker`, unless an ESCALATION policy sets
 * `workerRetries`), else escalate to the superior. A sub-master is its domain's tier too: when a
 * delivery's attempts run out it delivers the task again itself, up to `limits.deliveries`
 * (`retries.domain` or the policy's `domainRetries`), before it escalates to the master (a mayor
 * leaves that to its governor). The escalation carries the delivery's worker failures as its reason chain.
 */
export function handleFailure(
  state: HierarchyState,
  dispatcher: AgentInfo,
  goalId: string,
  taskId: string,
  ctx: DecisionContext,
  limits: DeliveryLimits,
): Decision[] {
  const task = state.tasks.get(taskKey(goalId, taskId));
  const goal = state.goals.get(goalId);
  if (!task || !ATTEMPT_FAILED.has(task.status) || !task.lastFailure) return [];
  const actor: Actor = { id: dispatcher.agentId, tier: dispatcher.tier };
  const { perDelivery, deliveries } = limits;
  const inDelivery = attemptInDelivery(task.attempt, perDelivery);
  const delivery = deliveryOf(task.attempt, perDelivery);
  const retryable = task.lastFailure.retryable;
  const redeliver = dispatcher.tier === "SUB_MASTER" && inDelivery >= perDelivery && delivery < deliveries;
  if (retryable && (inDelivery < perDelivery || redeliver)) {
    return [
      decision(
        "TaskRetried",
        {
          goalId,
          taskId,
          attempt: task.attempt + 1,
          maxAttempts: perDelivery,
          reason: redeliver
            ? `delivery ${delivery + 1} of ${deliveries} in ${dispatcher.name}'s domain after ${perDelivery} failed attempts, last: ${task.lastFailure.reason}`
            : task.lastFailure.reason,
          backoffMs: 0,
          excludeAgentIds: [...task.failedOn],
        },
        actor,
        taskRef(taskId),
      ),
    ];
  }
  const escalationId = exhaustedEscalationId(goalId, taskId, task.attempt, dispatcher);
  if (goal?.escalations.has(escalationId)) return [];
  const firstOfDelivery = (delivery - 1) * perDelivery + 1;
  const workerFailures = task.failures
    .filter((f) => f.attempt >= firstOfDelivery)
    .map((f) => `attempt ${f.attempt} on ${f.agentId} failed: ${f.reason}`);
  const tally =
    delivery === 1
      ? `${inDelivery} of ${perDelivery} attempts`
      : dispatcher.tier === "SUB_MASTER"
        ? `${perDelivery} attempts in each of ${delivery} deliveries (${task.attempt} attempts)`
        : `${inDelivery} of ${perDelivery} attempts of delivery ${delivery} (${task.attempt} attempts in all)`;
  return [
    escalationRaised({
      escalationId,
      goalId,
      taskId,
      kind: escalationKindOf(task.lastFailure),
      from: dispatcher,
      to: superiorOf(dispatcher, ctx.directory),
      reason: retryable
        ? `${dispatcher.name} escalates: task ${taskId} failed ${tally}${task.lastFailure.timedOut ? ", the last by timing out" : ""}`
        : `${dispatcher.name} escalates: task ${taskId} failed and cannot be retried`,
      reasonChain: workerFailures,
    }),
  ];
}
