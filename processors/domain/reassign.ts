/**
 * Reassignment away from a failed worker, for the two tiers that dispatch to workers (the aamas
 * mayor, the dgm sub-master). When the health monitor declares a worker failed, the dispatcher
 * that gave it a task moves every attempt the worker still holds (assigned, accepted or running)
 * to another worker: TaskReassigned (cause AGENT_FAILED) starts the next attempt, and a
 * TaskAssigned to the least-loaded fitting worker follows when one has room; otherwise the task
 * waits at the dispatcher like any other. The old attempt is over: a late result of it is ignored.
 *
 * The decision is made from the state alone (tasks held by a worker the directory says FAILED),
 * so making it again, after a crash or for a repeated AgentFailed, finds nothing left to move.
 *
 * A worker the scaler retired (AgentTerminated, domain/scaler.ts) is handed the same way, with
 * cause AGENT_TERMINATED: it gets no new work, and what it held goes to the others.
 *
 * The assignment to the new worker is judged by the SECURITY policies in effect at `at` (the time
 * of the AgentFailed, AgentTerminated or AgentRecovered it follows from), as any dispatch is
 * (dispatch.ts): an assignment a policy refuses is not made; the task goes back to its dispatcher's
 * queue and is escalated to the dispatcher's superior (POLICY_VIOLATION), once.
 */
import type { Actor } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext } from "./decider.js";
import { byPriority, dispatchToWorkers, leastLoaded, refusedAssignment } from "./dispatch.js";
import { checkAssignment, type AccessCheck } from "./policies/security.js";
import { loadOf, type HierarchyState, type TaskState } from "./kernel/state.js";
import { attemptTimeout } from "./time-limits.js";

const HELD: ReadonlySet<string> = new Set(["ASSIGNED", "ACCEPTED", "RUNNING"]);

/**
 * Moves the open attempts `failedId` holds for the dispatchers this host acts for.
 * `holder` names the dispatcher of a task at this tier; `hosted` returns it when this host acts for it.
 */
export function reassignFromFailed(
  state: HierarchyState,
  failedId: string,
  ctx: DecisionContext,
  holder: (t: TaskState) => string | null,
  hosted: (agentId: string, ctx: DecisionContext) => AgentInfo | null,
  at: Date = ctx.now,
): Decision[] {
  const failed = ctx.directory.get(failedId);
  if (!failed || (failed.status !== "FAILED" && failed.status !== "TERMINATED")) return [];
  const terminated = failed.status === "TERMINATED";
  const tasks: TaskState[] = [];
  for (const key of state.activeByAgent.get(failedId) ?? []) {
    const t = state.tasks.get(key);
    if (t && t.workerId === failedId && HELD.has(t.status)) tasks.push(t);
  }
  tasks.sort(byPriority);
  const load = new Map<string, number>();
  const loadOfWorker = (w: AgentInfo) => load.get(w.agentId) ?? loadOf(state, w.agentId);
  const out: Decision[] = [];
  for (const task of tasks) {
    const dispatcherId = holder(task);
    const me = dispatcherId ? hosted(dispatcherId, ctx) : null;
    if (!me) continue;
    const actor: Actor = { id: me.agentId, tier: me.tier };
    const ref = { type: "TASK" as const, id: task.spec.id };
    const attempt = task.attempt + 1;
    // The directory no longer lists a FAILED worker among the available ones.
    const fitting = ctx.directory
      .workersUnder(me.agentId, task.spec.specialization)
      .filter((w) => w.agentId !== failedId && loadOfWorker(w) < w.capacity);
    const candidate = fitting.length > 0 ? leastLoaded(fitting, loadOfWorker) : null;
    const security: AccessCheck | null = candidate
      ? checkAssignment(
          {
            assigner: me,
            assigneeTier: candidate.tier,
            assigneeId: candidate.agentId,
            goalId: task.goalId,
            taskId: task.spec.id,
            domain: task.spec.domain,
            at,
          },
          ctx.policies,
        )
      : null;
    const worker = security?.verdict === "DENY" ? null : candidate;
    if (worker) load.set(worker.agentId, loadOfWorker(worker) + 1);
    out.push(
      decision(
        "TaskReassigned",
        {
          goalId: task.goalId,
          taskId: task.spec.id,
          fromAgentId: failedId,
          // With no worker free, the task goes back to its dispatcher's queue.
          toAgentId: worker?.agentId ?? me.agentId,
          toTier: worker ? "WORKER" : me.tier,
          cause: terminated ? "AGENT_TERMINATED" : "AGENT_FAILED",
          reason: terminated
            ? `${failedId} was terminated while holding attempt ${task.attempt}`
            : `${failedId} failed while holding attempt ${task.attempt}`,
          attempt,
        },
        actor,
        ref,
      ),
    );
    // The refusal is about the next attempt, which waits at the dispatcher for its superior's answer.
    if (security?.verdict === "DENY") out.push(...refusedAssignment({ ...task, attempt }, me, security, ctx));
    if (worker)
      out.push(
        ...(security?.decisions ?? []),
        decision(
          "TaskAssigned",
          {
            goalId: task.goalId,
            taskId: task.spec.id,
            assigneeId: worker.agentId,
            assigneeTier: "WORKER",
            assignedBy: me.agentId,
            attempt,
            task: task.spec,
            priority: task.priority,
            timeoutMs: attemptTimeout(task.spec, worker, ctx),
          },
          actor,
          ref,
        ),
      );
  }
  return out;
}

/** A worker is back: its dispatcher may hand it what waits. */
export function afterRecovery(
  state: HierarchyState,
  recoveredId: string,
  ctx: DecisionContext,
  hosted: (agentId: string, ctx: DecisionContext) => AgentInfo | null,
  at: Date = ctx.now,
): Decision[] {
  const agent = ctx.directory.get(recoveredId);
  const me = agent?.superiorId ? hosted(agent.superiorId, ctx) : null;
  return me ? dispatchToWorkers(state, me, ctx, undefined, at) : [];
}
