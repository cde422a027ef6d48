/**
 * Escalations: who raises one to whom, who resolves it, and the two events every tier writes for
 * them, built here and nowhere else.
 *
 * Who raises what, to whom (the directory's chain of command):
 * - A dispatcher (mayor, dgm sub-master) whose task ran out of attempts (RETRIES_EXHAUSTED, TIMEOUT,
 *   TASK_FAILURE; dispatch.ts `handleFailure`), and any tier an assignment was refused to
 *   (POLICY_VIOLATION; dispatch.ts `refusedAssignment`), raises it to its superior.
 * - A governor whose task's budget was denied (RESOURCE_DENIED; governor.ts) raises it to the top.
 * - The top raises a goal's deadline at risk or missed (DEADLINE_AT_RISK; president.ts) to the
 *   operators: no tier of the hierarchy can buy a goal more time.
 *
 * Who resolves what:
 * - The governor (or sub-master) an escalation reached: delivers the task again in its domain
 *   (RETRY_ELSEWHERE to the same mayor, REASSIGN to another), splits it (SPLIT), or passes it to the
 *   top (ESCALATED_FURTHER, with `passUp`), as its ESCALATION policies route it (governor.ts).
 * - The top: splits the task for the domain tier holding it (SPLIT), else fails the goal
 *   (FAIL_GOAL); one reaching it after the goal ended is only closed (president.ts).
 * - The top closes a goal's deadline escalations when the goal ends (FAIL_GOAL when it failed,
 *   RESOLVED_WITH_GUIDANCE otherwise).
 * Routes and limits under ESCALATION policies are escalation-policy.ts's.
 *
 * An escalation's events are about its task, or its goal when it names none.
 */
import type {
  EscalationKind,
  EscalationOutcome,
  EscalationRaised,
  PolicyRef,
  Severity,
  Tier,
} from "../../schemas/generated/types.js";
import { decision, type Decision } from "./decider.js";
import type { AgentDirectory, AgentInfo } from "./directory.js";

/** An agent as an escalation names it. */
export interface Party {
  agentId: string;
  tier: Tier;
}

/** What an escalation is about: its id, its goal, its task (null for the goal as a whole). */
export interface EscalationSubject {
  escalationId: string;
  goalId: string;
  taskId: string | null;
}

const aggregateOf = (e: { goalId: string; taskId: string | null }) =>
  e.taskId ? { type: "TASK" as const, id: e.taskId } : { type: "GOAL" as const, id: e.goalId };

/** The superior of `agent` in the directory, to whom its own escalations go; null when it has none. */
export function superiorOf(agent: AgentInfo, directory: AgentDirectory): AgentInfo | null {
  return (agent.superiorId ? directory.get(agent.superiorId) : undefined) ?? null;
}

/** The top of `agent`'s topology, to whom a domain tier passes what it cannot settle; null when none is registered. */
export function topFor(agent: AgentInfo, directory: AgentDirectory): AgentInfo | null {
  return directory.top(agent.topology) ?? null;
}

/**
 * EscalationRaised from `from` to `to`; to the operators (SYSTEM) when `to` is null. CRITICAL
 * unless said otherwise; `reasonChain` is what went wrong before, earliest first.
 */
export function escalationRaised(e: {
  escalationId: string;
  goalId: string;
  taskId: string | null;
  kind: EscalationKind;
  severity?: Severity;
  from: Party;
  to: Party | null;
  reason: string;
  reasonChain?: string[];
  previousEscalationId?: string | null;
}): Decision {
  return decision(
    "EscalationRaised",
    {
      escalationId: e.escalationId,
      goalId: e.goalId,
      taskId: e.taskId,
      kind: e.kind,
      severity: e.severity ?? "CRITICAL",
      fromAgentId: e.from.agentId,
      fromTier: e.from.tier,
      toAgentId: e.to?.agentId ?? null,
      toTier: e.to?.tier ?? "SYSTEM",
      reason: e.reason,
      reasonChain: e.reasonChain ?? [],
      previousEscalationId: e.previousEscalationId ?? null,
    },
    { id: e.from.agentId, tier: e.from.tier },
    aggregateOf(e),
  );
}

/**
 * EscalationResolved of `e` by `by`. `openForMs` counts from when it was raised (its envelope's
 * occurredAt) to `now`; 0 when only its id is known (a deadline escalation closed with its goal).
 */
export function escalationResolved(
  e: EscalationSubject & { envelope?: { occurredAt: Date } },
  by: Party,
  answer: {
    outcome: EscalationOutcome;
    decision: string;
    reassignedTo?: string | null;
    newTaskIds?: string[];
    consultedPolicies?: PolicyRef[];
  },
  now: Date,
): Decision {
  return decision(
    "EscalationResolved",
    {
      escalationId: e.escalationId,
      goalId: e.goalId,
      taskId: e.taskId,
      outcome: answer.outcome,
      decision: answer.decision,
      reassignedTo: answer.reassignedTo ?? null,
      newTaskIds: answer.newTaskIds ?? [],
      consultedPolicies: answer.consultedPolicies ?? [],
      openForMs: e.envelope ? Math.max(0, now.getTime() - e.envelope.occurredAt.getTime()) : 0,
    },
    { id: by.agentId, tier: by.tier },
    aggregateOf(e),
  );
}

/**
 * Why a dispatcher escalates a task whose attempts ran out: TIMEOUT when the last attempt timed out
 * (time-limits.ts), RETRIES_EXHAUSTED after a retryable failure, TASK_FAILURE for one that cannot be retried.
 */
export function escalationKindOf(failure: { retryable: boolean; timedOut?: boolean }): EscalationKind {
  if (!failure.retryable) return "TASK_FAILURE";
  return failure.timedOut ? "TIMEOUT" : "RETRIES_EXHAUSTED";
}

/**
 * Escalations a governor answers by delivering the task again in its domain when no policy routes
 * them: attempts ran out after retryable failures, the last of them a failure or a timeout
 * (time-limits.ts), the same rule either way.
 */
export const REDELIVERED_KINDS: ReadonlySet<EscalationKind> = new Set(["RETRIES_EXHAUSTED", "TIMEOUT"]);

/** The id an escalation gets when `by` passes it on: `<id>><agentId>`. */
export const forwardedId = (escalationId: string, by: Party) => `${escalationId}>${by.agentId}`;

/**
 * An escalation `me` cannot settle, passed on to `to` (the top; the operators when null): a new
 * EscalationRaised carrying the chain so far (its reason appended), and this one resolved as
 * ESCALATED_FURTHER, naming the policies consulted when a policy decided it.
 */
export function passedUp(
  e: EscalationRaised,
  me: Party,
  to: Party | null,
  reason: string,
  consultedPolicies: PolicyRef[],
  now: Date,
): Decision[] {
  const id = forwardedId(e.escalationId, me);
  return [
    escalationRaised({
      escalationId: id,
      goalId: e.goalId,
      taskId: e.taskId,
      kind: e.kind,
      severity: e.severity,
      from: me,
      to,
      reason,
      reasonChain: [...e.reasonChain, e.reason],
      previousEscalationId: e.escalationId,
    }),
    escalationResolved(
      e,
      me,
      {
        outcome: "ESCALATED_FURTHER",
        decision: `passed to ${to?.agentId ?? "the platform"} as ${id}`,
        consultedPolicies,
      },
      now,
    ),
  ];
}

/** The escalation of a dispatcher whose task ran out of attempts (attempt `attempt`): raised once. */
export const exhaustedEscalationId = (goalId: string, taskId: string, attempt: number, dispatcher: Party) =>
  `esc-${goalId}-${taskId}-${attempt}-${dispatcher.agentId}`;

/** The escalation of a refused assignment of a task's attempt by `dispatcher`: raised once. */
export const refusedEscalationId = (goalId: string, taskId: string, attempt: number, dispatcher: Party) =>
  `esc-policy-${goalId}-${taskId}-${attempt}-${dispatcher.agentId}`;

/** The escalation of a task whose budget request `requestId` was denied, by the governor holding it: raised once. */
export const deniedEscalationId = (goalId: string, taskId: string, requestId: string, governor: Party) =>
  `esc-${goalId}-${taskId}-${requestId}-${governor.agentId}`;
