/**
 * Reports up the hierarchy (AAMAS "report" messages): when every task an agent held for a goal,
 * or for a project's current phase, is done, it tells its superior once, with the figures.
 */
import type { Actor } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext } from "./decider.js";
import { sumCosts, taskKey, tasksOf, toUnits, type HierarchyState, type TaskState } from "./state.js";

export function reportIfDone(
  state: HierarchyState,
  agent: AgentInfo,
  goalId: string,
  taskId: string,
  holder: (t: TaskState) => string | null,
  ctx: DecisionContext,
): Decision[] {
  const goal = state.goals.get(goalId);
  const finished = state.tasks.get(taskKey(goalId, taskId));
  if (!goal || !finished || !agent.superiorId) return [];
  // The phase of the task that just finished: lower tiers do not follow the project's phase.
  const phase = finished.spec.phase;
  const superior = ctx.directory.get(agent.superiorId);
  if (!superior) return [];
  const mine = tasksOf(state, goal).filter((t) => holder(t) === agent.agentId && t.spec.phase === phase);
  if (mine.length === 0 || !mine.every((t) => t.status === "COMPLETED")) return [];
  const fresh = mine.filter((t) => !goal.reported.has(`${agent.agentId}/${t.spec.id}`));
  if (fresh.length === 0) return [];
  const actor: Actor = { id: agent.agentId, tier: agent.tier };
  const cost = sumCosts(fresh.map((t) => t.cost));
  return [
    decision(
      "ReportSubmitted",
      {
        reportId: `report-${goalId}-${agent.agentId}-${phase ?? "goal"}`,
        goalId,
        taskIds: fresh.map((t) => t.spec.id),
        fromAgentId: agent.agentId,
        fromTier: agent.tier,
        toAgentId: superior.agentId,
        toTier: superior.tier,
        kind: phase ? "PHASE_SUMMARY" : "COMPLETION",
        phase,
        summary: `${agent.name}: ${fresh.length} task(s) of ${phase ?? "the goal"} done (${fresh.map((t) => t.spec.id).join(", ")})`,
        metrics: { tasksDone: fresh.length, cost: Number(toUnits(cost)) / 10_000 },
      },
      actor,
      { type: "GOAL", id: goalId },
    ),
  ];
}
