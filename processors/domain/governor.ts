/**
 * The governor (aamas) or sub-master (dgm) of a domain. A governor hands its domain's tasks to its
 * mayors, most urgent first, each to the mayor with the fewest open tasks that has workers of the
 * needed specialization; a sub-master has no mayors and dispatches straight to workers. Both report
 * finished work up and pass escalations they cannot settle to the top.
 */
import type { EscalationRaised, MessageTypeName, ResourceDenied } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import { afterHeldTaskEvent, dispatchToWorkers, leastLoaded, MIDDLE_TIER_READS, waitingAt } from "./dispatch.js";
import { answerContext, answerQuery, duplicateClaim } from "./context.js";
import { afterRecovery, reassignFromFailed } from "./reassign.js";
import { deliveryOf, retryLimitsFor } from "./limits.js";
import { budgetRequestFor } from "./resources.js";
import { loadOf, taskKey, type HierarchyState, type TaskState } from "./state.js";

/**
 * Besides the middle tiers' reads, the answers to the budget requests it makes (resources.ts): a
 * task waits at its governor for its ResourceAllocated when a RESOURCE_ALLOCATION policy applies.
 */
const GOVERNOR_READS: ReadonlySet<MessageTypeName> = new Set([
  ...MIDDLE_TIER_READS,
  "ResourceRequested",
  "ResourceAllocated",
  "ResourceDenied",
]);

export const governor: TierDecider = {
  role: "governor",
  reads: GOVERNOR_READS,
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? allocate(state, me, ctx) : [];
      }
      // A sub-master holds its workers' attempts: it rules on a second worker's claim (context.ts).
      case "TaskAccepted":
      case "TaskStarted":
        return duplicateClaim(input, state, ctx, (t) => t.governorId, hostedSubMaster);
      case "ContextRequested":
        return answerContext(input, state, ctx, hosted);
      case "QueryAsked":
        return answerQuery(input, state, ctx, hosted);
      case "TaskCompleted":
      case "TaskFailed": {
        const claim = duplicateClaim(input, state, ctx, (t) => t.governorId, hostedSubMaster);
        if (claim.length > 0) return claim;
        return afterHeldTaskEvent(input, state, ctx, {
          holder: (t) => t.governorId,
          hosted,
          dispatches: (me) => me.tier === "SUB_MASTER",
          handOut: allocate,
        });
      }
      case "TaskCancelled":
      case "TaskRetried":
        return afterHeldTaskEvent(input, state, ctx, {
          holder: (t) => t.governorId,
          hosted,
          // A sub-master dispatches to workers itself, so retries are its call.
          dispatches: (me) => me.tier === "SUB_MASTER",
          handOut: allocate,
        });
      case "EscalationRaised": {
        const me = input.value.toAgentId ? hosted(input.value.toAgentId, ctx) : null;
        return me ? (redeliver(input.value, state, me, ctx) ?? passUp(input.value, state, me, ctx)) : [];
      }
      // Only a sub-master dispatches to workers, so only it moves a failed worker's tasks.
      case "AgentFailed":
      case "AgentTerminated":
        return reassignFromFailed(state, input.value.agentId, ctx, (t) => t.governorId, hostedSubMaster);
      case "AgentRecovered":
        return afterRecovery(state, input.value.agentId, ctx, hostedSubMaster);
      case "AgentRegistered":
        return input.value.tier === "WORKER" ? afterRecovery(state, input.value.agentId, ctx, hostedSubMaster) : [];
      case "ResourceAllocated": {
        const me = hosted(input.value.requesterId, ctx);
        return me ? allocate(state, me, ctx) : [];
      }
      case "ResourceDenied": {
        const me = hosted(input.value.requesterId, ctx);
        return me ? resourceDenied(input.value, state, me, ctx) : [];
      }
      default:
        return [];
    }
  },
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent && (agent.tier === "GOVERNOR" || agent.tier === "SUB_MASTER") && ctx.hosts(agentId) ? agent : null;
}

function hostedSubMaster(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = hosted(agentId, ctx);
  return agent?.tier === "SUB_MASTER" ? agent : null;
}

/**
 * Whether a waiting task may be handed down: yes when its budget is allocated or none is needed.
 * A task with no request yet gets one (into `requests`) when a RESOURCE_ALLOCATION policy applies,
 * and waits for the answer; a denied task waits for the goal's end (resourceDenied escalated it).
 */
function budgeted(task: TaskState, me: AgentInfo, ctx: DecisionContext, requests: Decision[]): boolean {
  if (task.allocation) return task.allocation.status === "ALLOCATED";
  const request = budgetRequestFor(task, me, ctx.policies);
  if (!request) return true;
  requests.push(request);
  return false;
}

function allocate(state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  const requests: Decision[] = [];
  const ready = (t: TaskState) => budgeted(t, me, ctx, requests);
  if (me.tier === "SUB_MASTER") {
    const dispatched = dispatchToWorkers(state, me, ctx, ready);
    return [...requests, ...dispatched];
  }
  const mayors = ctx.directory.subordinates(me.agentId).filter((a) => a.tier === "MAYOR");
  const load = new Map(mayors.map((m) => [m.agentId, loadOf(state, m.agentId)]));
  // Which mayors can take a specialization, worked out once per specialization.
  const mayorsFor = new Map<string | null, AgentInfo[]>();
  const mayorsOf = (spec: string | null) => {
    let fit = mayorsFor.get(spec);
    if (!fit) mayorsFor.set(spec, (fit = mayors.filter((m) => ctx.directory.workersUnder(m.agentId, spec).length > 0)));
    return fit;
  };
  const out: Decision[] = [];
  for (const task of waitingAt(state, me, (t) => t.mayorId)) {
    if (!ready(task)) continue;
    const fitting = mayorsOf(task.spec.specialization);
    if (fitting.length === 0) continue;
    const mayor = leastLoaded(fitting, (m) => load.get(m.agentId)!);
    load.set(mayor.agentId, load.get(mayor.agentId)! + 1);
    out.push(
      decision(
        "TaskAssigned",
        {
          goalId: task.goalId,
          taskId: task.spec.id,
          assigneeId: mayor.agentId,
          assigneeTier: "MAYOR",
          assignedBy: me.agentId,
          attempt: task.attempt,
          task: task.spec,
          priority: task.priority,
          timeoutMs: null,
        },
        { id: me.agentId, tier: me.tier },
        { type: "TASK", id: task.spec.id },
      ),
    );
  }
  return [...requests, ...out];
}

/**
 * A task's budget was denied: it cannot be handed down, so the governor escalates to the top
 * (RESOURCE_DENIED, the denial's reasons in the reason), which fails the goal (president.ts).
 */
function resourceDenied(e: ResourceDenied, state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  if (!e.goalId || !e.taskId) return [];
  const goal = state.goals.get(e.goalId);
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  const escalationId = `esc-${e.goalId}-${e.taskId}-${e.requestId}-${me.agentId}`;
  if (!goal || !task || goal.escalations.has(escalationId) || task.governorId !== me.agentId) return [];
  if (task.status === "CANCELLED" || task.status === "COMPLETED") return [];
  const top = ctx.directory.top(me.topology);
  return [
    decision(
      "EscalationRaised",
      {
        escalationId,
        goalId: e.goalId,
        taskId: e.taskId,
        kind: "RESOURCE_DENIED",
        severity: "CRITICAL",
        fromAgentId: me.agentId,
        fromTier: me.tier,
        toAgentId: top?.agentId ?? null,
        toTier: top?.tier ?? "SYSTEM",
        reason: `${me.name} cannot dispatch task ${e.taskId}: its budget of ${e.requestedAmount} was denied: ${e.reasons.join("; ")}`,
        reasonChain: [],
        previousEscalationId: null,
      },
      { id: me.agentId, tier: me.tier },
      { type: "TASK", id: e.taskId },
    ),
  ];
}

/**
 * A governor's answer to its mayor running out of attempts: while the topology's `retries.domain`
 * allows another delivery of the task in the domain, it dispatches the task again as a new attempt,
 * to another mayor with fitting workers when it has one, and closes the escalation with that
 * decision. Null when it cannot: the escalation then goes up (passUp). A failure that cannot be
 * retried, a task no longer failed (cancelled by a stop) and a sub-master's escalation go up.
 */
function redeliver(e: EscalationRaised, state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] | null {
  if (me.tier !== "GOVERNOR" || e.kind !== "RETRIES_EXHAUSTED" || !e.taskId) return null;
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  if (!task || task.status !== "FAILED" || !task.lastFailure?.retryable || task.governorId !== me.agentId) return null;
  const deliveries = retryLimitsFor(ctx, me.topology).domain;
  const delivery = deliveryOf(task.attempt, task.maxAttempts);
  if (delivery >= deliveries) return null;
  const mayors = ctx.directory
    .subordinates(me.agentId)
    .filter((m) => m.tier === "MAYOR" && ctx.directory.workersUnder(m.agentId, task.spec.specialization).length > 0);
  if (mayors.length === 0) return null;
  const others = mayors.filter((m) => m.agentId !== e.fromAgentId);
  const mayor = leastLoaded(others.length > 0 ? others : mayors, (m) => loadOf(state, m.agentId));
  const actor = { id: me.agentId, tier: me.tier };
  const ref = { type: "TASK" as const, id: e.taskId };
  return [
    decision(
      "EscalationResolved",
      {
        escalationId: e.escalationId,
        goalId: e.goalId,
        taskId: e.taskId,
        outcome: mayor.agentId === e.fromAgentId ? "RETRY_ELSEWHERE" : "REASSIGN",
        decision: `delivery ${delivery + 1} of ${deliveries} in ${me.domain}: ${me.name} dispatches the task again to ${mayor.name} as attempt ${task.attempt + 1}`,
        reassignedTo: mayor.agentId,
        newTaskIds: [],
        consultedPolicies: [],
        openForMs: Math.max(0, ctx.now.getTime() - e.envelope.occurredAt.getTime()),
      },
      actor,
      ref,
    ),
    decision(
      "TaskAssigned",
      {
        goalId: e.goalId,
        taskId: e.taskId,
        assigneeId: mayor.agentId,
        assigneeTier: "MAYOR",
        assignedBy: me.agentId,
        attempt: task.attempt + 1,
        task: task.spec,
        priority: task.priority,
        timeoutMs: null,
      },
      actor,
      ref,
    ),
  ];
}

/** Until the policy engine gives governors a say, an escalation goes on to the top unchanged. */
function passUp(e: EscalationRaised, state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const top = ctx.directory.top(me.topology);
  const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
  const why =
    task?.status === "CANCELLED"
      ? ": the task was cancelled"
      : task?.status !== "FAILED"
        ? ""
        : task.lastFailure?.retryable
          ? `: ${deliveryOf(task.attempt, task.maxAttempts)} of ${retryLimitsFor(ctx, me.topology).domain} deliveries in ${me.domain} failed`
          : ": the failure cannot be retried";
  const forwardedId = `${e.escalationId}>${me.agentId}`;
  const actor = { id: me.agentId, tier: me.tier };
  return [
    decision(
      "EscalationRaised",
      {
        ...e,
        escalationId: forwardedId,
        fromAgentId: me.agentId,
        fromTier: me.tier,
        toAgentId: top?.agentId ?? null,
        toTier: top?.tier ?? "SYSTEM",
        reasonChain: [...e.reasonChain, e.reason],
        reason: `${me.name} cannot settle it${why}`,
        previousEscalationId: e.escalationId,
      },
      actor,
      { type: "TASK", id: e.taskId ?? e.goalId },
    ),
    decision(
      "EscalationResolved",
      {
        escalationId: e.escalationId,
        goalId: e.goalId,
        taskId: e.taskId,
        outcome: "ESCALATED_FURTHER",
        decision: `passed to ${top?.agentId ?? "the platform"} as ${forwardedId}`,
        reassignedTo: null,
        newTaskIds: [],
        consultedPolicies: [],
        openForMs: Math.max(0, ctx.now.getTime() - e.envelope.occurredAt.getTime()),
      },
      actor,
      { type: "TASK", id: e.taskId ?? e.goalId },
    ),
  ];
}
