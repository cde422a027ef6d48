/**
 * The mayor (aamas only): dispatches its tasks to its workers by specialization and load, retries
 * a failed attempt on another worker, escalates to its governor when attempts run out, and reports
 * up when its part of a goal or phase is done.
 */
import type { AgentInfo } from "./directory.js";
import type { Decision, DecisionContext, TierDecider, TierInput } from "./decider.js";
import { dispatchToWorkers, handleFailure } from "./dispatch.js";
import { reportIfDone } from "./reports.js";
import { taskKey, type HierarchyState } from "./state.js";

export const mayor: TierDecider = {
  role: "mayor",
  reads: new Set([
    "TaskCreated",
    "TaskAssigned",
    "TaskCompleted",
    "TaskFailed",
    "TaskRetried",
    "TaskCancelled",
    "EscalationRaised",
    "EscalationResolved",
    "ReportSubmitted",
  ]),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? dispatchToWorkers(state, me, ctx) : [];
      }
      case "TaskCompleted":
      case "TaskCancelled":
      case "TaskFailed":
      case "TaskRetried": {
        const { goalId, taskId } = input.value;
        const task = state.tasks.get(taskKey(goalId, taskId));
        const me = task?.mayorId ? hosted(task.mayorId, ctx) : null;
        if (!me) return [];
        const out: Decision[] = [];
        if (input.type === "TaskFailed") out.push(...handleFailure(state, me, goalId, taskId, ctx));
        if (input.type === "TaskCompleted") out.push(...reportIfDone(state, me, goalId, taskId, (t) => t.mayorId, ctx));
        return [...out, ...dispatchToWorkers(state, me, ctx)];
      }
      default:
        return [];
    }
  },
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent?.tier === "MAYOR" && ctx.hosts(agentId) ? agent : null;
}
