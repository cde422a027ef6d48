/**
 * Time travel: the state of a goal, an agent or the whole hierarchy as of a time T, computed by
 * replaying the log into the deciders' own folds (`evolve` of processors/domain/kernel/state.ts for goals
 * and tasks, AgentDirectory.apply for agents) up to T. An event belongs to "as of T" when it
 * occurred at or before T (its envelope's occurredAt: the domain's time, as every decider uses).
 *
 * The views are shaped like the read model's documents (projections/mongo/state-store.ts) so the
 * gateway serves them through the same GraphQL types; what the deciders' state does not hold
 * (descriptions, per-attempt timings) is null there.
 */
import type { Kafka } from "kafkajs";
import type { Codec } from "../../schemas/codec.js";
import type { Phase, TaskStatus, Tier } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { AgentDirectory } from "../../processors/domain/directory.js";
import { evolve, initialState, type HierarchyState } from "../../processors/domain/kernel/state.js";
import { sumCosts } from "../../processors/domain/kernel/costs.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
import {
  applyAttemptUsage,
  applyPlanEvent,
  noTaskModelUsage,
  noUsage,
  taskUsageOf,
  type AgentDoc,
  type GoalDoc,
  type TaskDoc,
  type TaskUsageFields,
} from "../mongo/state-store.js";
import type { ScanProgress } from "./log.js";
import { GOAL_TOPICS, inLogOrder, replay } from "./replay.js";

export interface Snapshot {
  asOf: Date;
  state: HierarchyState;
  directory: AgentDirectory;
  /** Events folded. */
  events: number;
  /**
   * What the deciders' state does not keep, folded from the same events by the state read model's
   * own rules: planners, planning attempts and model usage.
   */
  models: ModelsAsOf;
}

export interface ModelsAsOf {
  goals: Map<string, Pick<GoalDoc, "plans" | "planUsage" | "planner"> & { phasePlanners: Map<Phase, string> }>;
  /** By `goalId/taskId`. */
  tasks: Map<string, TaskUsageFields>;
}

/** Folds the planning and model-usage events into `models`, as the state read model does. */
export function foldModels(models: ModelsAsOf, event: PolityEvent, at: Date): void {
  const goalOf = (goalId: string) => {
    let g = models.goals.get(goalId);
    if (!g)
      models.goals.set(goalId, (g = { plans: [], planUsage: noUsage(), planner: null, phasePlanners: new Map() }));
    return g;
  };
  switch (event.type) {
    case "PlanRequested":
    case "PlanProposed":
      applyPlanEvent(goalOf(event.value.goalId), event, at);
      return;
    case "GoalDecomposed": {
      const g = goalOf(event.value.goalId);
      g.planner = event.value.planner;
      if (event.value.phase) g.phasePlanners.set(event.value.phase, event.value.planner);
      return;
    }
    case "TaskCompleted":
    case "TaskFailed": {
      const key = taskKey(event.value.goalId, event.value.taskId);
      let t = models.tasks.get(key);
      if (!t) models.tasks.set(key, (t = noTaskModelUsage()));
      applyAttemptUsage(t, event);
      return;
    }
    default:
      return;
  }
}

export interface AsOfOptions {
  kafka: Kafka;
  codec: Codec;
  at: Date;
  topicPrefix?: string;
  /** Only this goal (read from the one partition that holds it); else every goal and every agent. */
  goalId?: string;
  onProgress?: (p: ScanProgress) => void;
}

/** Replays the log up to `at` into the deciders' folds. */
export async function snapshotAsOf(options: AsOfOptions): Promise<Snapshot> {
  const { kafka, codec, at, goalId } = options;
  const until = at.getTime();
  const common = {
    kafka,
    codec,
    ...(options.topicPrefix ? { topicPrefix: options.topicPrefix } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  const goals = await replay({
    ...common,
    topics: GOAL_TOPICS,
    ...(goalId !== undefined ? { key: goalId } : {}),
    filter: (e) =>
      e.envelope.occurredAt.getTime() <= until && (goalId === undefined || e.envelope.correlationId === goalId),
  });
  let state = initialState({ keepEnded: Infinity });
  const models: ModelsAsOf = { goals: new Map(), tasks: new Map() };
  for (const e of inLogOrder(goals.events)) {
    state = evolve(state, e.event);
    foldModels(models, e.event, e.envelope.occurredAt);
  }
  const directory = new AgentDirectory();
  let agentEvents = 0;
  if (goalId === undefined) {
    const agents = await replay({
      ...common,
      topics: ["polity.agents.events"],
      filter: (e) => e.envelope.occurredAt.getTime() <= until,
    });
    for (const e of inLogOrder(agents.events)) directory.apply(e.event);
    agentEvents = agents.events.length;
  }
  return { asOf: at, state, directory, events: goals.events.length + agentEvents, models };
}

const TERMINAL: ReadonlySet<TaskStatus> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

/** The tasks of a goal as of the snapshot, shaped like TaskDoc. */
export function tasksAsOf(snapshot: Snapshot, goalId: string): TaskDoc[] {
  const goal = snapshot.state.goals.get(goalId);
  if (!goal) return [];
  return goal.taskIds.flatMap((taskId) => {
    const t = snapshot.state.tasks.get(`${goalId}/${taskId}`);
    if (!t) return [];
    const assignees: Partial<Record<Tier, string>> = {};
    const topology = goal.topology;
    if (t.governorId) assignees[topology === "dgm" ? "SUB_MASTER" : "GOVERNOR"] = t.governorId;
    if (t.mayorId) assignees.MAYOR = t.mayorId;
    if (t.workerId) assignees.WORKER = t.workerId;
    const last = t.failures.at(-1);
    const doc: TaskDoc = {
      _id: `${goalId}/${taskId}`,
      _pos: {},
      goalId,
      taskId,
      tenantId: goal.tenantId,
      title: t.spec.title,
      description: t.spec.description ?? null,
      domain: t.spec.domain,
      specialization: t.spec.specialization ?? null,
      phase: t.spec.phase ?? null,
      dependsOn: t.spec.dependsOn ?? [],
      priority: t.priority,
      maxAttempts: t.maxAttempts,
      parentTaskId: null,
      deadline: null,
      status: t.status,
      attempt: t.attempt,
      assignees,
      holders: Object.values(assignees),
      executor: null,
      progress: t.status === "COMPLETED" ? 1 : 0,
      result: t.result,
      outputs: Object.entries(t.outputs).map(([name, value]) => ({ name, value })),
      cost: t.cost,
      agentMs: 0,
      failures: t.failures.length,
      failedOn: t.failedOn,
      lastFailure: last
        ? { agentId: last.agentId, reason: last.reason, kind: "EXECUTION_ERROR", retryable: !!t.lastFailure?.retryable }
        : null,
      ...(snapshot.models.tasks.get(taskKey(goalId, taskId)) ?? noTaskModelUsage()),
      cancellation: null,
      timings: {
        createdAt: goal.submittedAt,
        assignedAt: t.heldSince,
        acceptedAt: null,
        startedAt: null,
        completedAt: null,
        durationMs: null,
      },
    };
    return [doc];
  });
}

/** A goal as of the snapshot, shaped like GoalDoc; null when it did not exist yet. */
export function goalAsOf(snapshot: Snapshot, goalId: string): GoalDoc | null {
  const g = snapshot.state.goals.get(goalId);
  if (!g) return null;
  const tasks = tasksAsOf(snapshot, goalId);
  const summary: Partial<Record<TaskStatus, number>> = {};
  for (const t of tasks) summary[t.status] = (summary[t.status] ?? 0) + 1;
  const completed = summary.COMPLETED ?? 0;
  const models = snapshot.models.goals.get(goalId);
  return {
    _id: goalId,
    _pos: {},
    goalId,
    tenantId: g.tenantId,
    title: g.title,
    description: null,
    kind: g.kind,
    topology: g.topology,
    status: g.status,
    priority: g.priority,
    domainHints: g.domainHints,
    constraints: Object.entries(g.constraints).map(([name, value]) => ({ name, value })),
    deadline: null,
    budget: g.budget,
    currentPhase: g.phase,
    // The deciders' state keeps when the current phase started, not the times of the finished ones.
    phases:
      g.phase && g.phaseStartedAt
        ? [
            {
              phase: g.phase,
              startedAt: g.phaseStartedAt,
              endedAt: null,
              planner: models?.phasePlanners.get(g.phase) ?? null,
            },
          ]
        : [],
    planner: models?.planner ?? null,
    plans: models?.plans ?? [],
    planUsage: models?.planUsage ?? noUsage(),
    result: null,
    outputs: [],
    failure: null,
    version: g.version,
    submittedAt: g.submittedAt,
    completedAt: null,
    taskSummary: summary,
    tasksTotal: tasks.length,
    progress: tasks.length === 0 ? 0 : completed / tasks.length,
    resourceConsumption: {
      computeCost: sumCosts(tasks.map((t) => t.cost)),
      agentMs: 0,
    },
    taskUsage: taskUsageOf(tasks),
    escalations: { open: g.openEscalations.size, total: g.escalations.size },
  };
}

/** Every agent as of the snapshot, shaped like AgentDoc (open tasks from the replayed tasks). */
export function agentsAsOf(snapshot: Snapshot): AgentDoc[] {
  const all = snapshot.directory.all();
  return all.map((a) => {
    const open = [...(snapshot.state.activeByAgent.get(a.agentId) ?? [])].filter((key) => {
      const t = snapshot.state.tasks.get(key);
      return t && !TERMINAL.has(t.status);
    });
    const load = snapshot.directory.reportedLoad(a.agentId);
    return {
      _id: a.agentId,
      _pos: {},
      agentId: a.agentId,
      name: a.name,
      tier: a.tier,
      topology: a.topology,
      domain: a.domain,
      specialization: a.specialization,
      superiorId: a.superiorId,
      subordinates: all.filter((s) => s.superiorId === a.agentId).map((s) => s.agentId),
      capacity: a.capacity,
      executor: a.executor,
      labels: [],
      heartbeatIntervalMs: a.heartbeatIntervalMs,
      status: a.status,
      load: open.length,
      registeredAt: null,
      lastHeartbeat: load?.at ?? null,
      heartbeatSequence: null,
      failure: null,
      termination: null,
      currentTasks: open,
      performance: {
        tasksCompleted: 0,
        tasksFailed: 0,
        totalCompletionMs: 0,
        avgCompletionMs: null,
        successRate: null,
      },
    };
  });
}
