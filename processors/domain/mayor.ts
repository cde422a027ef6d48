/**
 * The mayor (aamas only): dispatches its tasks to its workers by specialization and load, retries
 * a failed attempt on another worker, escalates to its governor when attempts run out, and reports
 * up when its part of a goal or phase is done.
 */
import type { AgentInfo } from "./directory.js";
import { answerContext, answerQuery, duplicateClaim } from "./context.js";
import type { Decision, DecisionContext, TierDecider, TierInput } from "./decider.js";
import { afterHeldTaskEvent, dispatchToWorkers, MIDDLE_TIER_READS } from "./dispatch.js";
import { afterRecovery, reassignFromFailed } from "./reassign.js";
import type { HierarchyState } from "./state.js";

export const mayor: TierDecider = {
  role: "mayor",
  reads: MIDDLE_TIER_READS,
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? dispatchToWorkers(state, me, ctx) : [];
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
        return afterHeldTaskEvent(input, state, ctx, {
          holder: (t) => t.mayorId,
          hosted,
          dispatches: () => true,
          handOut: dispatchToWorkers,
        });
      }
      case "TaskCancelled":
      case "TaskRetried":
        return afterHeldTaskEvent(input, state, ctx, {
          holder: (t) => t.mayorId,
          hosted,
          dispatches: () => true,
          handOut: dispatchToWorkers,
        });
      case "AgentFailed":
      case "AgentTerminated":
        return reassignFromFailed(state, input.value.agentId, ctx, (t) => t.mayorId, hosted);
      case "AgentRecovered":
        return afterRecovery(state, input.value.agentId, ctx, hosted);
      // A worker registered at run time (the scaler's): its mayor may hand it what waits.
      case "AgentRegistered":
        return input.value.tier === "WORKER" ? afterRecovery(state, input.value.agentId, ctx, hosted) : [];
      default:
        return [];
    }
  },
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent?.tier === "MAYOR" && ctx.hosts(agentId) ? agent : null;
}
