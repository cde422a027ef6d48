/**
 * What the hierarchy knows about the goals it runs: each goal, its phase and tasks, and for every
 * task who holds it at each tier. Every tier folds the same events into this one model with
 * `evolve`, and decides from it.
 *
 * `evolve` is idempotent and tolerates events arriving late or twice: statuses only move forward
 * within an attempt, and an older attempt never overwrites a newer one. Hosts rely on that: they
 * apply their own output at once (so the next decision sees it) and again when it comes back from
 * the log, and on start they fold the whole log before deciding again on the unacknowledged tail.
 *
 * For throughput `evolve` updates the state in place and returns it; `decide` never mutates it.
 */
import type { PolityEvent } from "../../../schemas/reader.js";
import type {
  Payload,
  GoalKind,
  GoalStatus,
  Phase,
  ResourceKind,
  TaskSpec,
  TaskStatus,
  Tier,
  Topology,
} from "../../../schemas/generated/types.js";
import { topicFor } from "../../../schemas/catalog.js";
import { PolicyBook, POLICY_EVENTS } from "../policies/book.js";
import { addCost } from "./costs.js";
import { taskKey } from "./keys.js";
import { ScalingLog, SCALING_EVENTS } from "../scaling-log.js";
import { ATTEMPT_OVER, GOAL_FINAL, goalMovesForward, TASK_RANK, TASK_TERMINAL, taskMovesForward } from "./status.js";

export interface TaskState {
  goalId: string;
  spec: TaskSpec;
  priority: number;
  maxAttempts: number;
  /** Order of creation within the goal; ties in priority are served first come, first served. */
  seq: number;
  status: TaskStatus;
  attempt: number;
  /** Who holds the current attempt at each tier below the top. */
  governorId: string | null;
  mayorId: string | null;
  workerId: string | null;
  /** Workers that already failed this task; a retry prefers someone else. */
  failedOn: string[];
  result: string | null;
  outputs: Record<string, string>;
  cost: string;
  /** The attempt's last failure, while it waits for a retry or an escalation; `timedOut` when its dispatcher timed it out. */
  lastFailure: { reason: string; retryable: boolean; timedOut?: boolean } | null;
  /** Every failed attempt, in order, so an escalation can tell what went wrong on the way. */
  failures: { attempt: number; agentId: string; reason: string }[];
  /** When the current holder at the governor tier received it (its TaskAssigned); null before. */
  heldSince: Date | null;
  /** The TaskStarted of the latest attempt that started: what an executor's outcome is caused by. */
  started: { attempt: number; eventId: string } | null;
  /** The task's budget request (resources.ts), one per task; null when none was made. */
  allocation: Allocation | null;
  /** The task this one is a part of (TaskCreated's parentTaskId: a SPLIT, escalation-policy.ts); null otherwise. */
  parentTaskId: string | null;
  /** Language-model calls its attempts made (TaskCompleted/TaskFailed usage): what its API_QUOTA allocation holds once done. */
  modelCalls: number;
  /**
   * The time limit of the current attempt at its worker (TaskAssigned's timeoutMs) and when the
   * worker was handed it; null when the attempt has no limit (time-limits.ts).
   */
  limit: { attempt: number; timeoutMs: number; since: Date } | null;
}

/** A resource request and its answer, as folded from ResourceRequested/Allocated/Denied. */
export interface Allocation {
  requestId: string;
  taskId: string | null;
  requesterId: string;
  kind: ResourceKind;
  amount: string;
  status: "REQUESTED" | "ALLOCATED" | "DENIED";
  /** Granted amount once ALLOCATED. */
  granted: string | null;
  /** The denial's reasons once DENIED. */
  reasons: string[];
  requestedAt: Date;
}

export interface GoalState {
  goalId: string;
  /** True while only the goal's tasks are known (tiers that do not read polity.goals.events). */
  partial: boolean;
  tenantId: string;
  kind: GoalKind;
  topology: Topology;
  title: string;
  /** What the submitter wants, in their words (GoalSubmitted); planners read it. */
  description: string;
  priority: number;
  status: GoalStatus;
  /** Events on polity.goals.events applied to this goal; the president is their only writer. */
  version: number;
  submittedAt: Date;
  /** Current phase of a project; null for a plain goal and before a project starts. */
  phase: Phase | null;
  phaseStartedAt: Date | null;
  /** Completed phases of a project, in order. */
  phasesDone: Phase[];
  domainHints: string[];
  constraints: Record<string, string>;
  /** The task graph the goal was submitted with; null when the planner decomposes it. */
  explicitTasks: TaskSpec[] | null;
  /** Ids of every task of the goal, in creation order. */
  taskIds: string[];
  openEscalations: Set<string>;
  /** Every escalation ever raised for the goal, so one is never raised twice. */
  escalations: Set<string>;
  /** The SubmitGoal that created the goal (GoalSubmitted's commandId); null while the goal is partial. */
  submitCommandId: string | null;
  /** SubmitGoal, RequestPhaseTransition and StopGoal commands already answered (accepted or rejected). */
  answeredCommands: Set<string>;
  /** Tasks a tier already reported done upward, as `agentId/taskId`, so reports are sent once. */
  reported: Set<string>;
  /** Completed tasks counted by the goal's latest GoalSnapshotTaken, for the periodic snapshot. */
  snapshotTasksCompleted: number;
  /** SubmitGoal's budget (GoalSubmitted); null for none or while the goal is partial. */
  budget: string | null;
  /** When the goal must be done (GoalSubmitted's deadline); null for none or while the goal is partial. */
  deadline: Date | null;
  /** Resource requests made for the goal, by requestId (resources.ts). */
  allocations: Map<string, Allocation>;
  /** PerformanceAlerts already written for the goal, by alertId. */
  alerts: Set<string>;
  /** ContextRequested already answered (ContextProvided), by requestId (context.ts). */
  contextAnswered: Set<string>;
  /** QueryAsked already answered (QueryAnswered), by queryId. */
  queriesAnswered: Set<string>;
  /** Conflicts raised or resolved for the goal, by conflictId. */
  conflicts: Set<string>;
  /**
   * The plan asked of a planner and not answered yet (PlanRequested without its PlanProposed): what
   * the top's host runs its planner for. Null when no plan is awaited.
   */
  planning: PlanRequest | null;
  /** PlanRequested ids answered (PlanProposed), so a request is never awaited again. */
  plansAnswered: Set<string>;
  /** Every refused plan's problems, attempt by attempt, for the reasons of a goal given up (PLANNING_FAILED). */
  planProblems: string[];
  /**
   * The goal ended (completed, failed, stopped) and its tasks were let go (see `settle`); events
   * of its tasks read after that change nothing.
   */
  settled: boolean;
}

export interface HierarchyState {
  goals: Map<string, GoalState>;
  /** Tasks by `goalId/taskId`. */
  tasks: Map<string, TaskState>;
  /** Open (not yet finished) task keys held by each agent, for load and capacity. */
  activeByAgent: Map<string, Set<string>>;
  /** Commands rejected for a goal that does not exist (SubmitGoal, RequestPhaseTransition), so they are answered once. */
  rejectedCommands: Set<string>;
  /**
   * Inputs a policy refused (a PolicyEvaluated DENY), so a refusal is written once: the id of the
   * event refused (the evaluation's causationId: a StopGoal, a ContextRequested, a QueryAsked, ...),
   * and for a context request or a query also `ContextRequested/<requestId>` or `QueryAsked/<queryId>`
   * (refusedKey), so the same request sent again is not judged again either. Folded by the tiers
   * that read polity.governance.events (president, governor, mayor, worker).
   */
  refused: Set<string>;
  /**
   * The policy versions among the events folded (polity.policies.events, read by the policy role
   * only); other deciders consult the global view in `ctx.policies`.
   */
  policies: PolicyBook;
  /** The scaler's own registrations, terminations and scalings (scaling-log.ts; the scaler role only). */
  scaling: ScalingLog;
  /** Liveness of the agents whose events this state folds (the health role reads polity.agents.events). */
  agents: Map<string, AgentHealth>;
  /**
   * How many ended goals keep their tasks, the most recently ended ones (a peer may still ask
   * about a task just done). Older ones are settled (`settle`): a long-running host would otherwise
   * hold every goal it ever ran. Time travel (projections/audit/as-of.ts) keeps them all.
   */
  keepEnded: number;
  /** Ended goals not settled yet, oldest first. */
  ended: string[];
  /** Goals with a plan asked and not answered (GoalState.planning), for the planner to find without a scan. */
  awaitingPlans: Set<string>;
  /**
   * Keys of tasks whose current attempt is held by a worker under a time limit (TaskState.limit):
   * all a clock tick looks at (time-limits.ts), so a tick costs nothing while no attempt has a limit.
   */
  timed: Set<string>;
  /** Goals with a deadline whose watch is not over (time-limits.ts `deadlineWatched`), for the top's clock ticks. */
  deadlines: Set<string>;
}

/** What the health monitor knows of an agent: its heartbeats and whether it was declared failed. */
export interface AgentHealth {
  agentId: string;
  tier: Tier;
  superiorId: string | null;
  /** Registered heartbeat interval; null until the registration is read. */
  intervalMs: number | null;
  /** occurredAt of its latest heartbeat; null before the first. */
  lastSeenAt: Date | null;
  lastSequence: number;
  /** Tasks it reported holding in its latest heartbeat. */
  inFlight: string[];
  /** When it was declared failed (AgentFailed's occurredAt), and the last heartbeat seen then; null while healthy. */
  failure: { at: Date; lastHeartbeatAt: Date | null; reason: string } | null;
  terminated: boolean;
}

/** A goal as first known: partial until its GoalSubmitted is folded. */
export function newGoal(goalId: string, tenantId: string, kind: GoalKind, at: Date): GoalState {
  return {
    goalId,
    partial: true,
    tenantId,
    kind,
    topology: "aamas",
    title: goalId,
    description: "",
    priority: 5,
    status: "RUNNING",
    version: 0,
    submittedAt: at,
    phase: null,
    phaseStartedAt: null,
    phasesDone: [],
    domainHints: [],
    constraints: {},
    explicitTasks: null,
    taskIds: [],
    openEscalations: new Set(),
    escalations: new Set(),
    submitCommandId: null,
    answeredCommands: new Set(),
    reported: new Set(),
    snapshotTasksCompleted: 0,
    budget: null,
    deadline: null,
    allocations: new Map(),
    alerts: new Set(),
    contextAnswered: new Set(),
    queriesAnswered: new Set(),
    conflicts: new Set(),
    planning: null,
    plansAnswered: new Set(),
    planProblems: [],
    settled: false,
  };
}

/** A PlanRequested as the state keeps it until it is answered. */
export type PlanRequest = Omit<Payload<"PlanRequested">, "envelope"> & { requestedAt: Date };

/** Ended goals whose tasks a processor keeps (per partition), unless told otherwise. */
export const KEEP_ENDED_GOALS = 8;

export function initialState(options: { keepEnded?: number } = {}): HierarchyState {
  return {
    goals: new Map(),
    tasks: new Map(),
    activeByAgent: new Map(),
    rejectedCommands: new Set(),
    refused: new Set(),
    policies: new PolicyBook(),
    scaling: new ScalingLog(),
    agents: new Map(),
    keepEnded: options.keepEnded ?? KEEP_ENDED_GOALS,
    ended: [],
    awaitingPlans: new Set(),
    timed: new Set(),
    deadlines: new Set(),
  };
}

/** The key under which a refused context request or query is remembered (HierarchyState.refused). */
export const refusedKey = (type: "ContextRequested" | "QueryAsked", id: string) => `${type}/${id}`;

/** Whether a policy already refused `input` (its event id) or, for a request or query, its id. */
export function wasRefused(
  state: HierarchyState,
  eventId: string,
  request?: { type: "ContextRequested" | "QueryAsked"; id: string },
): boolean {
  return state.refused.has(eventId) || (!!request && state.refused.has(refusedKey(request.type, request.id)));
}

export function isOpen(task: TaskState): boolean {
  return !TASK_TERMINAL.has(task.status);
}

export function tasksOf(state: HierarchyState, goal: GoalState): TaskState[] {
  const out: TaskState[] = [];
  for (const id of goal.taskIds) {
    const t = state.tasks.get(taskKey(goal.goalId, id));
    if (t) out.push(t);
  }
  return out;
}

/** Open task keys an agent holds: its load. */
export function loadOf(state: HierarchyState, agentId: string): number {
  return state.activeByAgent.get(agentId)?.size ?? 0;
}

function hold(state: HierarchyState, agentId: string | null, key: string): void {
  if (!agentId) return;
  let set = state.activeByAgent.get(agentId);
  if (!set) state.activeByAgent.set(agentId, (set = new Set()));
  set.add(key);
}

function release(state: HierarchyState, agentId: string | null, key: string): void {
  if (!agentId) return;
  const set = state.activeByAgent.get(agentId);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) state.activeByAgent.delete(agentId);
}

/** Frees the current attempt's holders when an attempt ends. */
function releaseAll(state: HierarchyState, task: TaskState, key: string, levels: ("governor" | "mayor" | "worker")[]) {
  if (levels.includes("governor")) release(state, task.governorId, key);
  if (levels.includes("mayor")) release(state, task.mayorId, key);
  if (levels.includes("worker")) release(state, task.workerId, key);
}

/** Moves a task forward within `attempt`; returns false when the event is stale or a repeat. */
function advance(task: TaskState, attempt: number, status: TaskStatus): boolean {
  if (!taskMovesForward(task, attempt, status)) return false;
  task.attempt = attempt;
  task.status = status;
  return true;
}

export function evolve(state: HierarchyState, event: PolityEvent): HierarchyState {
  if (POLICY_EVENTS.has(event.type)) state.policies.apply(event);
  if (SCALING_EVENTS.has(event.type)) state.scaling.apply(event);
  // A settled goal's tasks are gone; their late or replayed events must not bring them back.
  // Escalations still come through: the top closes every one, also after the goal ended.
  if (TASK_TOPIC.has(event.type) && !ESCALATIONS.has(event.type)) {
    const goalId = (event.value as { goalId?: string }).goalId;
    if (goalId && state.goals.get(goalId)?.settled) return state;
  }
  state = apply(state, event);
  watchTime(state, event);
  if (ENDS_GOAL.has(event.type)) {
    const goalId = (event.value as { goalId: string }).goalId;
    state.awaitingPlans.delete(goalId);
    if (!state.ended.includes(goalId) && !state.goals.get(goalId)?.settled) state.ended.push(goalId);
    while (state.ended.length > state.keepEnded) settle(state, state.ended.shift()!);
  }
  // Goal events carry the goal's version; keeping the highest seen makes a repeat harmless.
  if (GOAL_TOPIC.has(event.type)) {
    const goal = state.goals.get((event.value as { goalId: string }).goalId);
    const version = (event.value as { envelope: { aggregate: { version: number } } }).envelope.aggregate.version;
    if (goal && version > goal.version) goal.version = version;
  }
  return state;
}

const GOAL_TOPIC: ReadonlySet<string> = new Set(topicFor("GoalSubmitted").messages);
const TASK_TOPIC: ReadonlySet<string> = new Set(topicFor("TaskCreated").messages);
/** The events that end a goal; every tier reads them (polity.goals.events) to let the goal go. */
export const GOAL_ENDS = ["GoalCompleted", "GoalFailed", "GoalStopped"] as const;
const ENDS_GOAL: ReadonlySet<string> = new Set(GOAL_ENDS);
const ESCALATIONS: ReadonlySet<string> = new Set(["EscalationRaised", "EscalationResolved"]);

/**
 * Lets an ended goal's tasks go: a processor keeps only what it may still decide on. What stays
 * is the goal's status, the commands it answered (so a repeated command is answered once, as
 * before) and its escalations (the top closes one raised late). A goal whose end is read before
 * anything else of it (a tier folding goals.events ahead of tasks.events) becomes such a tombstone
 * too, once it is settled.
 */
function settle(state: HierarchyState, goalId: string): void {
  const goal = state.goals.get(goalId);
  if (!goal || goal.settled) return;
  for (const taskId of goal.taskIds) {
    const key = taskKey(goalId, taskId);
    const task = state.tasks.get(key);
    if (task) releaseAll(state, task, key, ["governor", "mayor", "worker"]);
    state.tasks.delete(key);
    state.timed.delete(key);
  }
  Object.assign(goal, {
    settled: true,
    taskIds: [],
    explicitTasks: null,
    reported: new Set<string>(),
    allocations: new Map(),
    alerts: new Set<string>(),
    contextAnswered: new Set<string>(),
    queriesAnswered: new Set<string>(),
    conflicts: new Set<string>(),
    planning: null,
    planProblems: [],
  });
}

function apply(state: HierarchyState, event: PolityEvent): HierarchyState {
  switch (event.type) {
    case "GoalSubmitted": {
      const e = event.value;
      const known = state.goals.get(e.goalId);
      if (known && !known.partial) return state;
      const goal = known ?? newGoal(e.goalId, e.envelope.tenantId, e.kind, e.envelope.occurredAt);
      Object.assign(goal, {
        partial: false,
        kind: e.kind,
        topology: e.topology,
        title: e.title,
        description: e.description,
        priority: e.priority,
        submittedAt: e.envelope.occurredAt,
        domainHints: e.domainHints,
        constraints: e.constraints,
        explicitTasks: e.tasks,
        budget: e.budget,
        deadline: e.deadline,
        submitCommandId: e.commandId,
      });
      goal.answeredCommands.add(e.commandId);
      state.goals.set(e.goalId, goal);
      return state;
    }
    case "GoalValidated":
      return setGoalStatus(state, event.value.goalId, "VALIDATED");
    case "PlanRequested": {
      const { envelope, ...request } = event.value;
      const goal = state.goals.get(request.goalId);
      // A request answered already (its PlanProposed folded first, or a repeat) is not awaited again.
      if (!goal || goal.plansAnswered.has(request.requestId) || GOAL_FINAL.has(goal.status)) return state;
      goal.planning = { ...request, requestedAt: envelope.occurredAt };
      state.awaitingPlans.add(goal.goalId);
      return state;
    }
    case "PlanProposed": {
      const e = event.value;
      const goal = state.goals.get(e.goalId);
      if (!goal) return state;
      if (goal.plansAnswered.has(e.requestId)) return state;
      goal.plansAnswered.add(e.requestId);
      if (goal.planning?.requestId === e.requestId) {
        goal.planning = null;
        state.awaitingPlans.delete(goal.goalId);
      }
      if (!e.accepted)
        goal.planProblems.push(
          `${e.phase ? `${e.phase} ` : ""}plan attempt ${e.attempt}: ${(e.error ? [e.error] : e.problems).join("; ")}`,
        );
      return state;
    }
    case "GoalDecomposed":
      return setGoalStatus(state, event.value.goalId, "RUNNING");
    case "GoalCompleted":
      ensureGoal(state, event.value);
      return setGoalStatus(state, event.value.goalId, "COMPLETED");
    case "GoalFailed":
      ensureGoal(state, event.value);
      return setGoalStatus(state, event.value.goalId, "FAILED");
    case "GoalStopped": {
      ensureGoal(state, event.value);
      // Its cause is the StopGoal it answers (the host sets causationId): answered once.
      const goal = state.goals.get(event.value.goalId);
      const command = event.value.envelope.causationId;
      if (goal && command) goal.answeredCommands.add(command);
      return setGoalStatus(state, event.value.goalId, "STOPPED");
    }
    case "GoalSnapshotTaken": {
      const goal = state.goals.get(event.value.goalId);
      if (goal) goal.snapshotTasksCompleted = Math.max(goal.snapshotTasksCompleted, event.value.tasksCompleted);
      return state;
    }
    case "PhaseTransitioned": {
      const e = event.value;
      const goal = state.goals.get(e.goalId);
      if (goal && e.requestId) goal.answeredCommands.add(e.requestId);
      if (!goal || goal.phase === e.toPhase || goal.phasesDone.includes(e.toPhase)) return state;
      if (goal.phase) goal.phasesDone.push(goal.phase);
      goal.phase = e.toPhase;
      goal.version += 1;
      goal.phaseStartedAt = e.envelope.occurredAt;
      return state;
    }
    case "TaskCreated": {
      const e = event.value;
      const key = taskKey(e.goalId, e.task.id);
      if (state.tasks.has(key)) return state;
      // Tiers below the top read only the tasks topic, and the top may fold the two topics in
      // either order: a task can be the first thing known of its goal.
      let goal = state.goals.get(e.goalId);
      if (!goal) {
        goal = newGoal(e.goalId, e.envelope.tenantId, e.task.phase ? "PROJECT" : "GOAL", e.envelope.occurredAt);
        state.goals.set(e.goalId, goal);
      }
      goal.taskIds.push(e.task.id);
      state.tasks.set(key, {
        goalId: e.goalId,
        spec: e.task,
        priority: e.priority,
        maxAttempts: e.maxAttempts,
        seq: goal.taskIds.length,
        status: "PENDING",
        attempt: 1,
        governorId: null,
        mayorId: null,
        workerId: null,
        failedOn: [],
        result: null,
        outputs: {},
        cost: "0.0000",
        lastFailure: null,
        failures: [],
        heldSince: null,
        started: null,
        allocation: null,
        parentTaskId: e.parentTaskId,
        modelCalls: 0,
        limit: null,
      });
      return state;
    }
    case "TaskAssigned": {
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || TASK_TERMINAL.has(task.status) || e.attempt < task.attempt) return state;
      // A late copy of the assignment of an attempt that already failed must not hold its worker again.
      if (e.assigneeTier === "WORKER" && e.attempt === task.attempt && ATTEMPT_OVER.has(task.status)) return state;
      if (e.attempt > task.attempt) {
        task.attempt = e.attempt;
        task.status = "ASSIGNED";
        // A superior handing the task down again as a new attempt (a governor dispatching it anew
        // in its domain) starts afresh below it: the last attempt's holders under it let go.
        if (e.assigneeTier !== "WORKER") {
          release(state, task.workerId, key);
          task.workerId = null;
          task.lastFailure = null;
          if (e.assigneeTier !== "MAYOR" || task.mayorId !== e.assigneeId) {
            release(state, task.mayorId, key);
            task.mayorId = null;
          }
        }
      } else if (TASK_RANK[task.status] < TASK_RANK.ASSIGNED) {
        task.status = "ASSIGNED";
      }
      switch (e.assigneeTier) {
        case "GOVERNOR":
        case "SUB_MASTER":
          task.governorId = e.assigneeId;
          task.heldSince ??= e.envelope.occurredAt;
          break;
        case "MAYOR":
          task.mayorId = e.assigneeId;
          break;
        case "WORKER":
          task.workerId = e.assigneeId;
          if (e.timeoutMs !== null && e.timeoutMs > 0 && task.limit?.attempt !== e.attempt)
            task.limit = { attempt: e.attempt, timeoutMs: e.timeoutMs, since: e.envelope.occurredAt };
          break;
        default:
          return state;
      }
      hold(state, e.assigneeId, key);
      return state;
    }
    case "TaskAccepted":
    case "TaskStarted": {
      if (claimedByAnother(state, event.value)) return state;
      if (event.type === "TaskStarted") {
        const task = state.tasks.get(taskKey(event.value.goalId, event.value.taskId));
        // The first TaskStarted of an attempt; one delivered again changes nothing.
        if (task && task.attempt === event.value.attempt && task.started?.attempt !== event.value.attempt)
          task.started = { attempt: event.value.attempt, eventId: event.value.envelope.eventId };
      }
      return step(
        state,
        event.value.goalId,
        event.value.taskId,
        event.value.attempt,
        event.type === "TaskAccepted" ? "ACCEPTED" : "RUNNING",
      );
    }
    case "TaskCompleted": {
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || claimedByAnother(state, e) || !advance(task, e.attempt, "COMPLETED")) return state;
      task.result = e.result;
      task.outputs = e.outputs;
      task.cost = addCost(task.cost, e.cost);
      task.modelCalls += e.usage?.calls ?? 0;
      task.lastFailure = null;
      releaseAll(state, task, key, ["governor", "mayor", "worker"]);
      return state;
    }
    case "TaskFailed": {
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || claimedByAnother(state, e) || !advance(task, e.attempt, "FAILED")) return state;
      task.lastFailure = { reason: e.reason, retryable: e.retryable };
      task.modelCalls += e.usage?.calls ?? 0;
      task.failures.push({ attempt: e.attempt, agentId: e.agentId, reason: e.reason });
      if (!task.failedOn.includes(e.agentId)) task.failedOn.push(e.agentId);
      release(state, task.workerId, key);
      return state;
    }
    case "TaskTimedOut": {
      // Its dispatcher ended the attempt: a failure like TaskFailed (retryable), retried or escalated the same way.
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || claimedByAnother(state, e) || !advance(task, e.attempt, "TIMED_OUT")) return state;
      const reason = `timed out after ${e.elapsedMs} ms (limit ${e.timeoutMs} ms)`;
      task.lastFailure = { reason: `attempt ${e.attempt} on ${e.agentId} ${reason}`, retryable: true, timedOut: true };
      task.failures.push({ attempt: e.attempt, agentId: e.agentId, reason });
      if (!task.failedOn.includes(e.agentId)) task.failedOn.push(e.agentId);
      release(state, task.workerId, key);
      return state;
    }
    case "TaskRetried": {
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || TASK_TERMINAL.has(task.status) || e.attempt <= task.attempt) return state;
      release(state, task.workerId, key);
      task.attempt = e.attempt;
      task.status = "READY";
      task.workerId = null;
      task.lastFailure = null;
      return state;
    }
    case "TaskReassigned": {
      // A dispatcher took the attempt away from a worker (it failed): the next attempt waits for
      // the TaskAssigned that follows. Only a reassignment away from the current worker is folded.
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || TASK_TERMINAL.has(task.status) || e.attempt <= task.attempt) return state;
      if (!e.fromAgentId || e.fromAgentId !== task.workerId) return state;
      release(state, task.workerId, key);
      if (e.cause === "AGENT_FAILED" && !task.failedOn.includes(e.fromAgentId)) task.failedOn.push(e.fromAgentId);
      task.attempt = e.attempt;
      task.status = "READY";
      task.workerId = null;
      task.lastFailure = null;
      return state;
    }
    case "AgentRegistered": {
      const e = event.value;
      const known = agentHealth(state, e.agentId, e.tier);
      known.superiorId = e.superiorId;
      known.intervalMs = e.heartbeatIntervalMs;
      return state;
    }
    case "AgentHeartbeat": {
      const e = event.value;
      // The health monitor's own beats are its clock, not an agent to watch.
      if (e.tier === "SYSTEM") return state;
      const known = agentHealth(state, e.agentId, e.tier);
      const at = e.envelope.occurredAt;
      if (known.lastSeenAt && at.getTime() <= known.lastSeenAt.getTime()) return state;
      known.lastSeenAt = at;
      known.lastSequence = e.sequence;
      known.inFlight = e.inFlightTasks;
      return state;
    }
    case "AgentFailed": {
      const e = event.value;
      const known = agentHealth(state, e.agentId, e.tier);
      if (!known.failure)
        known.failure = { at: e.envelope.occurredAt, lastHeartbeatAt: e.lastHeartbeatAt, reason: e.reason };
      return state;
    }
    case "AgentRecovered":
      agentHealth(state, event.value.agentId, event.value.tier).failure = null;
      return state;
    case "AgentTerminated":
      agentHealth(state, event.value.agentId, event.value.tier).terminated = true;
      return state;
    case "TaskCancelled": {
      const e = event.value;
      const key = taskKey(e.goalId, e.taskId);
      const task = state.tasks.get(key);
      if (!task || TASK_TERMINAL.has(task.status)) return state;
      task.status = "CANCELLED";
      releaseAll(state, task, key, ["governor", "mayor", "worker"]);
      return state;
    }
    case "EscalationRaised": {
      const goal = state.goals.get(event.value.goalId);
      if (goal && !goal.escalations.has(event.value.escalationId)) {
        goal.escalations.add(event.value.escalationId);
        goal.openEscalations.add(event.value.escalationId);
      }
      return state;
    }
    case "EscalationResolved": {
      const goal = state.goals.get(event.value.goalId);
      goal?.escalations.add(event.value.escalationId);
      goal?.openEscalations.delete(event.value.escalationId);
      return state;
    }
    case "GoalRejected": {
      state.rejectedCommands.add(event.value.commandId);
      // A goal given up after it was accepted (no valid plan) ends here; a refused submission never began.
      const goal = state.goals.get(event.value.goalId);
      if (goal && !goal.partial && goal.submitCommandId === event.value.commandId) {
        goal.planning = null;
        state.awaitingPlans.delete(goal.goalId);
        return setGoalStatus(state, event.value.goalId, "REJECTED");
      }
      return state;
    }
    case "PolicyEvaluated": {
      const e = event.value;
      if (e.decision !== "DENY") return state;
      if (e.envelope.causationId) state.refused.add(e.envelope.causationId);
      if (e.subject.type === "ContextRequested" || e.subject.type === "QueryAsked")
        state.refused.add(refusedKey(e.subject.type, e.subject.id));
      return state;
    }
    case "ResourceRequested": {
      const e = event.value;
      if (!e.goalId) return state;
      const goal = goalOf(state, e.goalId, e.envelope.tenantId, e.envelope.occurredAt);
      if (goal.allocations.has(e.requestId)) return state;
      const allocation: Allocation = {
        requestId: e.requestId,
        taskId: e.taskId,
        requesterId: e.requesterId,
        kind: e.kind,
        amount: e.amount,
        status: "REQUESTED",
        granted: null,
        reasons: [],
        requestedAt: e.envelope.occurredAt,
      };
      goal.allocations.set(e.requestId, allocation);
      const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
      if (task && !task.allocation) task.allocation = allocation;
      return state;
    }
    case "ResourceAllocated":
    case "ResourceDenied": {
      const e = event.value;
      const allocation = e.goalId ? state.goals.get(e.goalId)?.allocations.get(e.requestId) : undefined;
      if (!allocation || allocation.status !== "REQUESTED") return state;
      if (event.type === "ResourceAllocated") {
        allocation.status = "ALLOCATED";
        allocation.granted = event.value.grantedAmount;
      } else {
        allocation.status = "DENIED";
        allocation.reasons = event.value.reasons;
      }
      return state;
    }
    case "ContextProvided":
      state.goals.get(event.value.goalId)?.contextAnswered.add(event.value.requestId);
      return state;
    case "QueryAnswered":
      state.goals.get(event.value.goalId)?.queriesAnswered.add(event.value.queryId);
      return state;
    case "ConflictRaised":
    case "ConflictResolved":
      state.goals.get(event.value.goalId)?.conflicts.add(event.value.conflictId);
      return state;
    case "PerformanceAlert": {
      const e = event.value;
      if (e.goalId) state.goals.get(e.goalId)?.alerts.add(e.alertId);
      return state;
    }
    case "PhaseTransitionRejected": {
      const goal = state.goals.get(event.value.goalId);
      // A request for a goal that does not exist is remembered with the rejected commands.
      if (goal) goal.answeredCommands.add(event.value.requestId);
      else state.rejectedCommands.add(event.value.requestId);
      return state;
    }
    case "ReportSubmitted": {
      const e = event.value;
      const goal = state.goals.get(e.goalId);
      if (goal) for (const id of e.taskIds) goal.reported.add(`${e.fromAgentId}/${id}`);
      return state;
    }
    default:
      return state;
  }
}

/**
 * Keeps the clock's indexes (HierarchyState.timed, .deadlines) in step with the event just folded:
 * a task is watched while a worker holds its current attempt under a limit; a goal while it has a
 * deadline and is running, or has a deadline escalation still open (time-limits.ts closes it).
 */
function watchTime(state: HierarchyState, event: PolityEvent): void {
  const goalId = (event.value as { goalId?: string }).goalId;
  if (!goalId) return;
  const taskId = (event.value as { taskId?: string | null }).taskId;
  if (typeof taskId === "string" && TASK_TOPIC.has(event.type)) {
    const key = taskKey(goalId, taskId);
    const task = state.tasks.get(key);
    const watched = !!task?.workerId && task.limit?.attempt === task.attempt && HELD_BY_WORKER.has(task.status);
    if (watched) state.timed.add(key);
    else state.timed.delete(key);
  }
  const goal = state.goals.get(goalId);
  if (!goal?.deadline) return;
  if (deadlineWatched(goal)) state.deadlines.add(goalId);
  else state.deadlines.delete(goalId);
}

const HELD_BY_WORKER: ReadonlySet<TaskStatus> = new Set(["ASSIGNED", "ACCEPTED", "RUNNING"]);

/** Escalation ids of a goal's deadline: raised by the top when it is at risk, and when it passed (onMiss `warn`). */
export const deadlineEscalationIds = (goalId: string) => ({
  atRisk: `esc-deadline-at-risk-${goalId}`,
  missed: `esc-deadline-missed-${goalId}`,
});

/** Whether the top still watches a goal's deadline: it is running, or one of its deadline escalations is open. */
export function deadlineWatched(goal: GoalState): boolean {
  if (!goal.deadline || goal.partial) return false;
  if (!GOAL_FINAL.has(goal.status)) return true;
  const ids = deadlineEscalationIds(goal.goalId);
  return goal.openEscalations.has(ids.atRisk) || goal.openEscalations.has(ids.missed);
}

function goalOf(state: HierarchyState, goalId: string, tenantId: string, at: Date): GoalState {
  let goal = state.goals.get(goalId);
  if (!goal) state.goals.set(goalId, (goal = newGoal(goalId, tenantId, "GOAL", at)));
  return goal;
}

function agentHealth(state: HierarchyState, agentId: string, tier: Tier): AgentHealth {
  let known = state.agents.get(agentId);
  if (!known) {
    known = {
      agentId,
      tier,
      superiorId: null,
      intervalMs: null,
      lastSeenAt: null,
      lastSequence: 0,
      inFlight: [],
      failure: null,
      terminated: false,
    };
    state.agents.set(agentId, known);
  }
  return known;
}

/**
 * A report on the current attempt by a worker other than its assignee (a second worker claiming
 * the task): ignored, so it never moves the assignee's attempt; the dispatcher raises the conflict.
 */
function claimedByAnother(
  state: HierarchyState,
  e: { goalId: string; taskId: string; agentId: string; attempt: number },
): boolean {
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  return !!task && task.workerId !== null && task.attempt === e.attempt && task.workerId !== e.agentId;
}

function step(state: HierarchyState, goalId: string, taskId: string, attempt: number, status: TaskStatus) {
  const task = state.tasks.get(taskKey(goalId, taskId));
  if (task && !ATTEMPT_OVER.has(task.status)) advance(task, attempt, status);
  return state;
}

/** A goal's end read before anything else of it: a partial goal to hold its status (and settle). */
function ensureGoal(state: HierarchyState, e: { goalId: string; envelope: { tenantId: string; occurredAt: Date } }) {
  if (!state.goals.has(e.goalId))
    state.goals.set(e.goalId, newGoal(e.goalId, e.envelope.tenantId, "GOAL", e.envelope.occurredAt));
}

function setGoalStatus(state: HierarchyState, goalId: string, status: GoalStatus): HierarchyState {
  const goal = state.goals.get(goalId);
  if (goal && goalMovesForward(goal.status, status)) goal.status = status;
  return state;
}
