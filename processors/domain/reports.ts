/**
 * Reports up the hierarchy (AAMAS "report" messages): when its domain's part of a goal, or of a
 * project's phase, is done, each governor and mayor that held some of it tells its superior once,
 * with the tasks it held and their figures.
 */
import type { Actor } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext } from "./decider.js";
import { tasksOf, type HierarchyState, type TaskState } from "./kernel/state.js";
import { sumCosts, toUnits } from "./kernel/costs.js";
import { taskKey } from "./kernel/keys.js";

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
  // Once per agent, goal and phase: when the whole of its domain's part is done. The tasks a goal
  // will give a domain are all known (TaskCreated) before any is assigned.
  const part = tasksOf(state, goal).filter((t) => t.spec.domain === agent.domain && t.spec.phase === phase);
  if (!part.every((t) => t.status === "COMPLETED")) return [];
  const mine = part.filter((t) => holder(t) === agent.agentId);
  if (mine.length === 0) return [];
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
