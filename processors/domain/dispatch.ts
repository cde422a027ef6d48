/**
 * Dispatch to workers, shared by the mayor (aamas) and the sub-master (dgm), the two tiers that
 * hand tasks to workers: waiting tasks go out in priority order (then first come, first served),
 * each to the least-loaded fitting worker that has free capacity; a task waits when every fitting
 * worker is full. Failed attempts are retried elsewhere up to the task's limit, then escalated.
 */
import type { Actor } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext } from "./decider.js";
import { loadOf, taskKey, type HierarchyState, type TaskState } from "./state.js";

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

/** Assigns waiting tasks of `dispatcher` to workers with free capacity. */
export function dispatchToWorkers(state: HierarchyState, dispatcher: AgentInfo, ctx: DecisionContext): Decision[] {
  const waiting = waitingAt(state, dispatcher, (t) => t.workerId);
  if (waiting.length === 0) return [];
  const load = new Map<string, number>();
  const loadOfWorker = (w: AgentInfo) => load.get(w.agentId) ?? loadOf(state, w.agentId);
  const actor: Actor = { id: dispatcher.agentId, tier: dispatcher.tier };
  const out: Decision[] = [];
  for (const task of waiting) {
    const fitting = ctx.directory
      .workersUnder(dispatcher.agentId, task.spec.specialization)
      .filter((w) => loadOfWorker(w) < w.capacity);
    if (fitting.length === 0) continue; // waits for a slot
    const fresh = fitting.filter((w) => !task.failedOn.includes(w.agentId));
    const pool = fresh.length > 0 ? fresh : fitting;
    const worker = pool.reduce((best, w) => {
      const diff = loadOfWorker(w) - loadOfWorker(best);
      return diff < 0 || (diff === 0 && w.agentId < best.agentId) ? w : best;
    });
    load.set(worker.agentId, loadOfWorker(worker) + 1);
    out.push(
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
          timeoutMs: null,
        },
        actor,
        taskRef(task.spec.id),
      ),
    );
  }
  return out;
}

/** After a failed attempt: retry elsewhere while attempts remain, else escalate to the superior. */
export function handleFailure(
  state: HierarchyState,
  dispatcher: AgentInfo,
  goalId: string,
  taskId: string,
  ctx: DecisionContext,
): Decision[] {
  const task = state.tasks.get(taskKey(goalId, taskId));
  const goal = state.goals.get(goalId);
  if (!task || task.status !== "FAILED" || !task.lastFailure) return [];
  const actor: Actor = { id: dispatcher.agentId, tier: dispatcher.tier };
  if (task.lastFailure.retryable && task.attempt < task.maxAttempts) {
    return [
      decision(
        "TaskRetried",
        {
          goalId,
          taskId,
          attempt: task.attempt + 1,
          maxAttempts: task.maxAttempts,
          reason: task.lastFailure.reason,
          backoffMs: 0,
          excludeAgentIds: [...task.failedOn],
        },
        actor,
        taskRef(taskId),
      ),
    ];
  }
  const escalationId = `esc-${goalId}-${taskId}-${task.attempt}-${dispatcher.agentId}`;
  if (goal?.escalations.has(escalationId)) return [];
  const superior = dispatcher.superiorId ? ctx.directory.get(dispatcher.superiorId) : undefined;
  const exhausted = task.lastFailure.retryable;
  return [
    decision(
      "EscalationRaised",
      {
        escalationId,
        goalId,
        taskId,
        kind: exhausted ? "RETRIES_EXHAUSTED" : "TASK_FAILURE",
        severity: "CRITICAL",
        fromAgentId: dispatcher.agentId,
        fromTier: dispatcher.tier,
        toAgentId: superior?.agentId ?? null,
        toTier: superior?.tier ?? "SYSTEM",
        reason: exhausted
          ? `task ${taskId} failed ${task.attempt} of ${task.maxAttempts} attempts, last: ${task.lastFailure.reason}`
          : `task ${taskId} failed and cannot be retried: ${task.lastFailure.reason}`,
        reasonChain: [],
        previousEscalationId: null,
      },
      actor,
      taskRef(taskId),
    ),
  ];
}
