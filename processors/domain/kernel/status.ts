/**
 * The order of task and goal statuses, in one place: the hierarchy's state and every read model
 * apply events by these rules, so that a late or repeated event never moves anything backwards.
 */
import type { GoalStatus, TaskStatus } from "../../../schemas/generated/types.js";

/** A task's progress within one attempt; FAILED and TIMED_OUT end an attempt, a retry starts the next. */
export const TASK_RANK: Record<TaskStatus, number> = {
  PENDING: 0,
  READY: 1,
  ASSIGNED: 2,
  ACCEPTED: 3,
  RUNNING: 4,
  TIMED_OUT: 5,
  FAILED: 5,
  COMPLETED: 6,
  CANCELLED: 6,
};

/** Final for the task: nothing changes it any more. */
export const TASK_TERMINAL: ReadonlySet<TaskStatus> = new Set(["COMPLETED", "CANCELLED"]);

/** Ends the current attempt. */
export const ATTEMPT_OVER: ReadonlySet<TaskStatus> = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

/**
 * An attempt that ended without a result: it failed at its worker (FAILED) or its dispatcher timed
 * it out (TIMED_OUT). Both wait for the same answer from the dispatcher: a retry or an escalation.
 */
export const ATTEMPT_FAILED: ReadonlySet<TaskStatus> = new Set(["FAILED", "TIMED_OUT"]);

export const GOAL_RANK: Record<GoalStatus, number> = {
  SUBMITTED: 0,
  VALIDATED: 1,
  DECOMPOSED: 2,
  RUNNING: 3,
  COMPLETED: 4,
  FAILED: 4,
  STOPPED: 4,
  REJECTED: 4,
};

export const GOAL_FINAL: ReadonlySet<GoalStatus> = new Set(["COMPLETED", "FAILED", "STOPPED", "REJECTED"]);

/** Whether an event saying `status` for `attempt` moves a task forward; false for a late or repeated one. */
export function taskMovesForward(
  task: { status: TaskStatus; attempt: number },
  attempt: number,
  status: TaskStatus,
): boolean {
  if (TASK_TERMINAL.has(task.status)) return false;
  // The first success completes the task, whichever attempt it comes from. A success of an attempt
  // its dispatcher had moved on from (timed out, or taken from a worker declared failed) arrives
  // after that move in the log, but the worker that did the work folded its own result first, and
  // then drops the move and the next attempt as coming after a completed task. Were the late
  // success dropped by everyone else, the next attempt would wait for that worker forever (a fault
  // suite round lost goals so). Taking it makes every reader's fold agree, in either order.
  if (status === "COMPLETED") return true;
  if (attempt < task.attempt) return false;
  // A timed-out attempt is over: its late progress or failure changes nothing.
  if (attempt === task.attempt && task.status === "TIMED_OUT") return false;
  return attempt > task.attempt || TASK_RANK[status] > TASK_RANK[task.status];
}

/** Whether a goal in `current` (null: not known yet) may move to `next`. */
export function goalMovesForward(current: GoalStatus | null, next: GoalStatus): boolean {
  return current === null || GOAL_RANK[next] > GOAL_RANK[current];
}
