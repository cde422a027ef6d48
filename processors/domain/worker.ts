/**
 * The worker: takes an assignment (TaskAccepted, TaskStarted), and when its executor finishes,
 * reports TaskCompleted or TaskFailed. Running the executor is the host's side effect; this
 * decider only says what the facts are, so a replay never runs anything twice.
 */
import type { AgentInfo } from "./directory.js";
import {
  decision,
  type Decision,
  type DecisionContext,
  type ExecutionFinished,
  type ExecutionProgressed,
  type TierDecider,
  type TierInput,
} from "./decider.js";
import type { MessageTypeName } from "../../schemas/generated/types.js";
import { answerQuery } from "./context.js";
import { GOAL_ENDS, type HierarchyState, type TaskState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";

export const worker: TierDecider = {
  role: "worker",
  reads: new Set<MessageTypeName>([
    // A goal's end lets its tasks go (state.ts `settle`); attempts still running are aborted.
    ...GOAL_ENDS,
    "TaskCreated",
    "TaskAssigned",
    "TaskStarted",
    "TaskCompleted",
    "TaskFailed",
    // Its dispatcher timed the attempt out: the host aborts the execution it no longer holds.
    "TaskTimedOut",
    "TaskRetried",
    "TaskReassigned",
    "TaskCancelled",
    // A peer's question, answered from what this worker did (context.ts), once.
    "QueryAsked",
    "QueryAnswered",
    // A query this worker refused (COMMUNICATION, a DENY) is refused once (state.ts `refused`).
    "PolicyEvaluated",
  ]),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const e = input.value;
        if (e.assigneeTier !== "WORKER") return [];
        const me = hosted(e.assigneeId, ctx);
        const task = state.tasks.get(taskKey(e.goalId, e.taskId));
        if (!me || !task || task.workerId !== me.agentId || task.attempt !== e.attempt || task.status !== "ASSIGNED")
          return [];
        const actor = { id: me.agentId, tier: me.tier };
        const ref = { type: "TASK" as const, id: e.taskId };
        return [
          decision(
            "TaskAccepted",
            { goalId: e.goalId, taskId: e.taskId, agentId: me.agentId, tier: "WORKER", attempt: e.attempt },
            actor,
            ref,
          ),
          decision(
            "TaskStarted",
            {
              goalId: e.goalId,
              taskId: e.taskId,
              agentId: me.agentId,
              attempt: e.attempt,
              executor: me.executor ?? "simulated",
            },
            actor,
            ref,
          ),
        ];
      }
      case "ExecutionFinished":
        return finished(input, state, ctx);
      case "ExecutionProgressed":
        return progressed(input, state, ctx);
      case "QueryAsked":
        return answerQuery(input, state, ctx, hosted);
      default:
        return [];
    }
  },
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent?.tier === "WORKER" && ctx.hosts(agentId) ? agent : null;
}

/** TaskProgressed for an attempt still running on its worker; progress of anything else is dropped. */
function progressed(p: ExecutionProgressed, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const task = state.tasks.get(taskKey(p.goalId, p.taskId));
  if (!task || task.status !== "RUNNING" || task.attempt !== p.attempt || task.workerId !== p.agentId) return [];
  const me = ctx.directory.get(p.agentId);
  return [
    decision(
      "TaskProgressed",
      {
        goalId: p.goalId,
        taskId: p.taskId,
        agentId: p.agentId,
        attempt: p.attempt,
        percent: Math.max(0, Math.min(100, Math.round(p.percent))),
        message: p.message,
        metrics: p.metrics,
      },
      { id: p.agentId, tier: me?.tier ?? "WORKER" },
      { type: "TASK", id: p.taskId },
    ),
  ];
}

function finished(f: ExecutionFinished, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const task = state.tasks.get(taskKey(f.goalId, f.taskId));
  // A result for an attempt that was cancelled, retried elsewhere or already reported is dropped.
  if (!task || task.status !== "RUNNING" || task.attempt !== f.attempt || task.workerId !== f.agentId) return [];
  const me = ctx.directory.get(f.agentId);
  const actor = { id: f.agentId, tier: me?.tier ?? "WORKER" };
  const ref = { type: "TASK" as const, id: f.taskId };
  const o = f.outcome;
  if (o.ok) {
    return [
      decision(
        "TaskCompleted",
        {
          goalId: f.goalId,
          taskId: f.taskId,
          agentId: f.agentId,
          attempt: f.attempt,
          result: o.result,
          durationMs: o.durationMs,
          outputs: o.outputs,
          cost: o.cost,
          exitCode: o.exitCode,
          usage: o.usage ?? null,
        },
        actor,
        ref,
      ),
    ];
  }
  return [
    decision(
      "TaskFailed",
      {
        goalId: f.goalId,
        taskId: f.taskId,
        agentId: f.agentId,
        attempt: f.attempt,
        reason: o.reason,
        failureKind: o.kind,
        retryable: o.retryable,
        exitCode: o.exitCode,
        output: o.output,
        durationMs: o.durationMs,
        usage: o.usage ?? null,
      },
      actor,
      ref,
    ),
  ];
}

/** Attempts running on the host's workers with no result yet: what its executors must (re)run. */
export function runningOn(state: HierarchyState, hosts: (agentId: string) => boolean): TaskState[] {
  const out: TaskState[] = [];
  for (const [agentId, keys] of state.activeByAgent) {
    if (!hosts(agentId)) continue;
    for (const key of keys) {
      const t = state.tasks.get(key);
      if (t && t.status === "RUNNING" && t.workerId === agentId) out.push(t);
    }
  }
  return out;
}
