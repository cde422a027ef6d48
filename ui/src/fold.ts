/**
 * A goal's tasks kept current from its live events (the goalProgress subscription), with the same
 * rules as the state projection (projections/mongo/state-store.ts): an older attempt never
 * overrides a newer one, a state never goes back within an attempt, and a completed or cancelled
 * task stays so. The page starts from the read model and folds every event after it, so a task's
 * new state shows as soon as its event arrives, ahead of the read model. No imports: pure, and
 * tested on its own (test/ui/fold.test.ts).
 */

export type TaskStatus =
  "PENDING" | "READY" | "ASSIGNED" | "ACCEPTED" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

export interface TaskView {
  taskId: string;
  title: string;
  domain: string;
  specialization: string | null;
  phase: string | null;
  status: TaskStatus;
  attempt: number;
  dependsOn: string[];
  worker: string | null;
  progress: number;
  cost: string | null;
  /** When the state shown was reached, from the event (or the read model). */
  changedAt: string | null;
}

export interface GoalLive {
  status: string | null;
  currentPhase: string | null;
  tasks: Map<string, TaskView>;
  /** Bumped on every change, for React. */
  version: number;
}

export interface LiveEventLike {
  type: string;
  taskId: string | null;
  occurredAt: string;
  payload: Record<string, unknown>;
}

const RANK: Record<TaskStatus, number> = {
  PENDING: 0,
  READY: 1,
  ASSIGNED: 2,
  ACCEPTED: 3,
  RUNNING: 4,
  FAILED: 5,
  TIMED_OUT: 5,
  COMPLETED: 6,
  CANCELLED: 6,
};
const TERMINAL = new Set<TaskStatus>(["COMPLETED", "CANCELLED"]);
const ATTEMPT_OVER = new Set<TaskStatus>(["COMPLETED", "CANCELLED", "FAILED", "TIMED_OUT"]);

const GOAL_STATUS_OF: Record<string, string> = {
  GoalSubmitted: "SUBMITTED",
  GoalValidated: "VALIDATED",
  GoalDecomposed: "DECOMPOSED",
  GoalCompleted: "COMPLETED",
  GoalFailed: "FAILED",
  GoalStopped: "STOPPED",
  GoalRejected: "REJECTED",
};
const GOAL_RANK: Record<string, number> = {
  SUBMITTED: 0,
  VALIDATED: 1,
  DECOMPOSED: 2,
  RUNNING: 3,
  COMPLETED: 4,
  FAILED: 4,
  STOPPED: 4,
  REJECTED: 4,
};
const GOAL_FINAL = new Set(["COMPLETED", "FAILED", "STOPPED", "REJECTED"]);

export function isGoalFinal(status: string | null | undefined): boolean {
  return !!status && GOAL_FINAL.has(status);
}

/** processors/domain/kernel/status.ts taskMovesForward, then the move. */
function advance(task: TaskView, attempt: number, status: TaskStatus): boolean {
  if (TERMINAL.has(task.status)) return false;
  // The first success completes the task, whichever attempt it comes from (a late one included).
  if (status === "COMPLETED") {
    task.attempt = attempt;
    task.status = status;
    return true;
  }
  if (attempt < task.attempt) return false;
  if (attempt === task.attempt && RANK[status] <= RANK[task.status]) return false;
  task.attempt = attempt;
  task.status = status;
  return true;
}

function moveGoal(goal: GoalLive, status: string): boolean {
  const next = GOAL_RANK[status];
  const current = goal.status ? GOAL_RANK[goal.status] : undefined;
  if (next === undefined || (current !== undefined && next <= current)) return false;
  goal.status = status;
  return true;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown, fallback = 0): number => (typeof v === "number" ? v : fallback);

/** Applies one live event; returns true when something shown changed. */
export function applyEvent(goal: GoalLive, e: LiveEventLike): boolean {
  const p = e.payload;
  const goalStatus = GOAL_STATUS_OF[e.type];
  if (goalStatus) {
    if (!moveGoal(goal, goalStatus)) return false;
    goal.version++;
    return true;
  }
  if (e.type === "PhaseTransitioned") {
    goal.currentPhase = str(p.toPhase) ?? goal.currentPhase;
    goal.version++;
    return true;
  }
  if (e.type === "TaskCreated") {
    const spec = (p.task ?? {}) as Record<string, unknown>;
    const id = str(spec.id);
    if (!id || goal.tasks.has(id)) return false;
    goal.tasks.set(id, {
      taskId: id,
      title: str(spec.title) ?? id,
      domain: str(spec.domain) ?? "",
      specialization: str(spec.specialization),
      phase: str(spec.phase),
      status: "PENDING",
      attempt: 1,
      dependsOn: Array.isArray(spec.dependsOn) ? (spec.dependsOn as string[]) : [],
      worker: null,
      progress: 0,
      cost: null,
      changedAt: e.occurredAt,
    });
    moveGoal(goal, "RUNNING");
    goal.version++;
    return true;
  }
  const id = e.taskId;
  const task = id ? goal.tasks.get(id) : undefined;
  if (!task) return false;
  const attempt = num(p.attempt, task.attempt);
  let changed = false;
  switch (e.type) {
    case "TaskAssigned": {
      if (TERMINAL.has(task.status) || attempt < task.attempt) break;
      if (attempt === task.attempt && ATTEMPT_OVER.has(task.status)) break;
      if (attempt > task.attempt) {
        task.attempt = attempt;
        task.status = "ASSIGNED";
        changed = true;
      } else if (RANK[task.status] < RANK.ASSIGNED) {
        task.status = "ASSIGNED";
        changed = true;
      }
      if (p.assigneeTier === "WORKER") {
        task.worker = str(p.assigneeId);
        changed = true;
      }
      break;
    }
    case "TaskAccepted":
      if (!ATTEMPT_OVER.has(task.status)) changed = advance(task, attempt, "ACCEPTED");
      break;
    case "TaskStarted":
      if (!ATTEMPT_OVER.has(task.status)) changed = advance(task, attempt, "RUNNING");
      break;
    case "TaskProgressed": {
      const percent = num(p.percent, task.progress);
      if (attempt === task.attempt && !ATTEMPT_OVER.has(task.status) && percent > task.progress) {
        task.progress = percent;
        changed = true;
      }
      break;
    }
    case "TaskCompleted":
      // Also a result that arrives after its attempt timed out or moved on: the tiers take it too.
      changed = advance(task, attempt, "COMPLETED");
      if (changed) {
        task.progress = 100;
        task.worker = task.worker ?? str(p.agentId);
        task.cost = str(p.cost) ?? task.cost;
      }
      break;
    case "TaskFailed":
      changed = advance(task, attempt, "FAILED");
      break;
    case "TaskTimedOut":
      changed = advance(task, attempt, "TIMED_OUT");
      break;
    case "TaskRetried":
      if (!TERMINAL.has(task.status) && attempt > task.attempt) {
        task.attempt = attempt;
        task.status = "READY";
        task.progress = 0;
        task.worker = null;
        changed = true;
      }
      break;
    case "TaskCancelled":
      if (!TERMINAL.has(task.status)) {
        task.status = "CANCELLED";
        changed = true;
      }
      break;
    default:
      break;
  }
  if (changed) {
    task.changedAt = e.occurredAt;
    goal.version++;
  }
  return changed;
}

/**
 * Takes what the read model says of a goal where it is ahead of what the page holds (after a
 * reconnection, or once the goal ended); never moves anything back.
 */
export function mergeReadModel(
  goal: GoalLive,
  status: string | null,
  currentPhase: string | null,
  tasks: Omit<TaskView, "changedAt">[],
): void {
  if (status) moveGoal(goal, status);
  if (currentPhase) goal.currentPhase = currentPhase;
  for (const t of tasks) {
    const mine = goal.tasks.get(t.taskId);
    if (!mine) {
      goal.tasks.set(t.taskId, { ...t, changedAt: null });
      continue;
    }
    advance(mine, t.attempt, t.status);
    if (t.attempt === mine.attempt) mine.progress = Math.max(mine.progress, t.progress);
    mine.worker = t.worker ?? mine.worker;
    mine.cost = t.cost ?? mine.cost;
  }
  goal.version++;
}

/** Layers of a DAG (longest path from a root), for drawing it left to right. */
export function layers(tasks: { taskId: string; dependsOn: string[] }[]): Map<string, number> {
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const t = byId.get(id);
    if (!t || visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const dep of t.dependsOn) if (byId.has(dep)) d = Math.max(d, visit(dep) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  for (const t of tasks) visit(t.taskId);
  return depth;
}
