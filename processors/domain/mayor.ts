/**
 * The mayor (aamas only): dispatches its tasks to its workers by specialization and load, retries
 * a failed attempt on another worker, escalates to its governor when attempts run out, and reports
 * up when its part of a goal or phase is done.
 */
import type { AgentInfo } from "./directory.js";
import { answerContext, answerQuery, duplicateClaim } from "./context.js";
import type { Decision, DecisionContext, TierDecider, TierInput } from "./decider.js";
import { afterHeldTaskEvent, dispatchToWorkers, MIDDLE_TIER_READS, type HolderRules } from "./dispatch.js";
import { cite, escalationEvaluated, escalationPolicyAt } from "./policies/escalation-policy.js";
import { retryLimitsFor } from "./limits.js";
import { afterRecovery, reassignFromFailed } from "./reassign.js";
import { type HierarchyState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";
import { timedOutAttempts } from "./time-limits.js";

const RULES: HolderRules = {
  holder: (t) => t.mayorId,
  hosted,
  dispatches: () => true,
  handOut: (state, me, ctx, at) => dispatchToWorkers(state, me, ctx, undefined, at),
};

export const mayor: TierDecider = {
  role: "mayor",
  reads: MIDDLE_TIER_READS,
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? dispatchToWorkers(state, me, ctx, undefined, input.value.envelope.occurredAt) : [];
      }
      // A second worker claiming an attempt: a conflict, ruled for the assignee (context.ts).
      case "TaskAccepted":
      case "TaskStarted":
        return duplicateClaim(input, state, ctx, (t) => t.mayorId, hosted);
      case "ContextRequested":
        return answerContext(input, state, ctx, hosted);
      case "QueryAsked":
        return answerQuery(input, state, ctx, hosted);
      case "TaskCompleted":
      case "TaskFailed": {
        const claim = duplicateClaim(input, state, ctx, (t) => t.mayorId, hosted);
        if (claim.length > 0) return claim;
        if (input.type === "TaskFailed") return failedUnderPolicy(input, state, ctx);
        return afterHeldTaskEvent(input, state, ctx, RULES);
      }
      // The mayor's own TaskTimedOut, read back: retried or escalated as a failed attempt is.
      case "TaskTimedOut":
        return failedUnderPolicy(input, state, ctx);
      // Time passed: attempts its workers held longer than their limit are timed out (time-limits.ts).
      case "ClockTicked":
        return timedOutAttempts(state, input.now, ctx, (t) => t.mayorId, hosted);
      case "TaskCancelled":
      case "TaskRetried":
        return afterHeldTaskEvent(input, state, ctx, RULES);
      case "AgentFailed":
      case "AgentTerminated":
        return reassignFromFailed(
          state,
          input.value.agentId,
          ctx,
          (t) => t.mayorId,
          hosted,
          input.value.envelope.occurredAt,
        );
      case "AgentRecovered":
        return afterRecovery(state, input.value.agentId, ctx, hosted, input.value.envelope.occurredAt);
      // A worker registered at run time (the scaler's): its mayor may hand it what waits.
      case "AgentRegistered":
        return input.value.tier === "WORKER"
          ? afterRecovery(state, input.value.agentId, ctx, hosted, input.value.envelope.occurredAt)
          : [];
      default:
        return [];
    }
  },
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent?.tier === "MAYOR" && ctx.hosts(agentId) ? agent : null;
}

/**
 * A failed (or timed-out) attempt: retried or escalated as the task's maxAttempts allow, or, under
 * an ESCALATION policy applying to mayors in the task's domain (in effect when the attempt failed),
 * as its `workerRetries` allows; an escalation the policy's limit decided is recorded (PolicyEvaluated).
 */
function failedUnderPolicy(
  input: Extract<TierInput, { type: "TaskFailed" | "TaskTimedOut" }>,
  state: HierarchyState,
  ctx: DecisionContext,
): Decision[] {
  const e = input.value;
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  const me = task?.mayorId ? hosted(task.mayorId, ctx) : null;
  const policy = task && me ? escalationPolicyAt(ctx.policies, e.envelope.occurredAt, me.tier, task.spec.domain) : null;
  const limit = policy?.workerRetries;
  if (!task || !me || !limit) return afterHeldTaskEvent(input, state, ctx, RULES);
  // A mayor never delivers again itself (its governor does), so only the attempts per delivery matter.
  const decisions = afterHeldTaskEvent(input, state, ctx, RULES, {
    perDelivery: limit.value,
    deliveries: retryLimitsFor(ctx, me.topology).domain,
  });
  if (!decisions.some((d) => d.type === "EscalationRaised")) return decisions;
  return [
    ...decisions,
    escalationEvaluated(
      e.goalId,
      { type: input.type, id: `${e.goalId}/${e.taskId}#${e.attempt}`, agentId: e.agentId },
      limit.policy,
      policy,
      [
        `${cite(limit.policy, "workerRetries")}: ${limit.value} attempts per delivery; ${me.name} escalates to its governor`,
      ],
      { id: me.agentId, tier: me.tier },
    ),
  ];
}
