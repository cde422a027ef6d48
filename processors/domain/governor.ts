/**
 * The governor (aamas) or sub-master (dgm) of a domain. A governor hands its domain's tasks to its
 * mayors, most urgent first, each to the mayor with the fewest open tasks that has workers of the
 * needed specialization; a sub-master has no mayors and dispatches straight to workers. Both report
 * finished work up and pass escalations they cannot settle to the top.
 */
import type { EscalationRaised } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import { dispatchToWorkers, handleFailure, waitingAt } from "./dispatch.js";
import { reportIfDone } from "./reports.js";
import { loadOf, taskKey, type HierarchyState } from "./state.js";

const TASK_EVENTS_READ = [
  "TaskCreated",
  "TaskAssigned",
  "TaskCompleted",
  "TaskFailed",
  "TaskRetried",
  "TaskCancelled",
  "EscalationRaised",
  "EscalationResolved",
  "ReportSubmitted",
] as const;

export const governor: TierDecider = {
  role: "governor",
  reads: new Set(TASK_EVENTS_READ),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? allocate(state, me, ctx) : [];
      }
      case "TaskCompleted":
      case "TaskCancelled":
      case "TaskFailed":
      case "TaskRetried": {
        const { goalId, taskId } = input.value;
        const task = state.tasks.get(taskKey(goalId, taskId));
        const me = task?.governorId ? hosted(task.governorId, ctx) : null;
        if (!me) return [];
        const out: Decision[] = [];
        // A sub-master dispatches to workers itself, so retries are its call.
        if (input.type === "TaskFailed" && me.tier === "SUB_MASTER")
          out.push(...handleFailure(state, me, goalId, taskId, ctx));
        if (input.type === "TaskCompleted")
          out.push(...reportIfDone(state, me, goalId, taskId, (t) => t.governorId, ctx));
        return [...out, ...allocate(state, me, ctx)];
      }
      case "EscalationRaised": {
        const me = input.value.toAgentId ? hosted(input.value.toAgentId, ctx) : null;
        return me ? passUp(input.value, state, me, ctx) : [];
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

function allocate(state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  if (me.tier === "SUB_MASTER") return dispatchToWorkers(state, me, ctx);
  const mayors = ctx.directory.subordinates(me.agentId).filter((a) => a.tier === "MAYOR");
  const load = new Map(mayors.map((m) => [m.agentId, loadOf(state, m.agentId)]));
  const out: Decision[] = [];
  for (const task of waitingAt(state, me, (t) => t.mayorId)) {
    const fitting = mayors.filter((m) => ctx.directory.workersUnder(m.agentId, task.spec.specialization).length > 0);
    if (fitting.length === 0) continue;
    const mayor = fitting.reduce((best, m) => {
      const diff = load.get(m.agentId)! - load.get(best.agentId)!;
      return diff < 0 || (diff === 0 && m.agentId < best.agentId) ? m : best;
    });
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
  return out;
}

/** Until the policy engine gives governors a say, an escalation goes on to the top unchanged. */
function passUp(e: EscalationRaised, state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const top = ctx.directory.top(me.topology);
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
        reason: `${me.name} cannot settle it`,
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
