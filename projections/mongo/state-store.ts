/**
 * The MongoDB current-state read model ("state"): goals, tasks, agents, escalations and policies as
 * documents shaped like the AAMAS design's JSON examples, built from the log by a ProjectionHost.
 *
 * Idempotency works by position, because the store (FerretDB 1.x) has no multi-document
 * transactions to commit data and checkpoint together:
 *
 * - Every document records, per source topic partition, the offset of the last event applied to it
 *   (`_pos.<topic_partition>`), and every write is guarded by that position, so a redelivered
 *   event matches nothing. The checkpoint is written after the data and only moves forward ($max);
 *   a crash in between makes the host deliver the batch again, which the guards turn into no-ops.
 * - Fields have exactly one writer each. A document's own topic partition (tasks of a goal on
 *   polity.tasks.events, an agent on polity.agents.events, ...) owns its main fields: the store reads
 *   the document, folds the batch's new events (offset above the recorded position) with the rules of
 *   processors/domain/kernel/state.ts (statuses move forward within an attempt), and writes the result as a
 *   compare-and-set on the position it read. Documents written from other partitions (an agent's
 *   current tasks and performance from every goal's task partition, a superior's subordinates) get one
 *   update per event, guarded by `_pos.<that partition>` < offset, in an ordered bulk so that the
 *   events of one partition land in log order; they use commutative operators ($inc, $addToSet, $pull).
 * - Those cross-document effects are written before the document whose fold decided them: if a crash
 *   falls in between, the fold decides them again on redelivery and their own guards drop the repeats.
 * - Summaries (a goal's taskSummary, resource consumption, escalation counts, governors and mayors,
 *   phase progress; an agent's average completion time, success rate, current phase and assigned
 *   projects) are recomputed from the documents they summarise, which is idempotent by construction,
 *   instead of being kept with $inc (which would need the previous status of every task and could
 *   drift). A goal's summary reads the goal document too (its kind, phases, plans and resource
 *   requests), so it is recomputed after every batch of any topic that changes one of these
 *   (goalSummaryInputs): the last recomputation sees every input at its final state, whatever order
 *   the topics were applied in.
 * - Documents are created by an unguarded upsert that only sets defaults ($setOnInsert) before the
 *   guarded updates, because a guarded upsert on an existing document raises a duplicate-key error.
 * - What a batch wrote of a partition's own documents (and its positions on documents of other
 *   partitions) is remembered (written.ts), so the next batch of that partition starts from it instead
 *   of reading it back; the compare-and-set finds a document another host moved since, and the store
 *   then forgets everything and the host applies the batch again from what is stored.
 */
import {
  ATTEMPT_OVER,
  GOAL_RANK,
  goalMovesForward,
  TASK_RANK,
  TASK_TERMINAL,
  taskMovesForward,
} from "../../processors/domain/kernel/status.js";
import { MongoBulkWriteError, type AnyBulkWriteOperation, type Collection, type Db, type Document } from "mongodb";
import { findEach } from "./find-each.js";
import { foldKey, Written } from "./written.js";
import { checkpointKey, type Checkpoints, type LoggedEvent, type ProjectionStore } from "../host.js";
import { formatCost, sumCosts, toUnits } from "../../processors/domain/kernel/costs.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
import { PHASES } from "../../processors/domain/planner.js";
import { ownerOf } from "../../processors/domain/kernel/tenancy.js";
import type {
  EnforcementAction,
  EscalationKind,
  EscalationOutcome,
  ExecutorKind,
  GoalKind,
  GoalStatus,
  ModelUsage,
  Phase,
  PlanProposed,
  PlanRequested,
  PolicyCategory,
  PolicyDecision,
  ResourceKind,
  Severity,
  TaskCompleted,
  TaskFailed,
  TaskFailureKind,
  TaskStatus,
  Tier,
  Topology,
} from "../../schemas/generated/types.js";

export const STATE_TOPICS = [
  "polity.goals.events",
  "polity.tasks.events",
  "polity.agents.events",
  "polity.policies.events",
  "polity.governance.events",
] as const;

/** Positions of the last applied event per source (`<topic with _ for .>_<partition>`). */
export type Positions = Record<string, number>;

/**
 * A string map from the log (outputs, constraints, labels) as a list: FerretDB 1.x refuses field names
 * containing "." or starting with "$", and task outputs are named like "fe-design.by".
 */
export type Entries = { name: string; value: string }[];

function entries(map: Record<string, string>): Entries {
  return Object.entries(map)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value }));
}

export interface PhaseProgress {
  phase: Phase;
  startedAt: Date;
  endedAt: Date | null;
  /** Planner that decomposed the phase (its GoalDecomposed); null until then. */
  planner: string | null;
}

/** What one model call (or one attempt's calls together) used, as the log records it (ModelUsage). */
export type UsageDoc = ModelUsage;

/** A task attempt's model usage, with how the attempt ended and what it cost. */
export interface AttemptUsage extends UsageDoc {
  attempt: number;
  outcome: "COMPLETED" | "FAILED";
  /** The attempt's cost (TaskCompleted.cost); null for a failed attempt, whose event records none. */
  cost: string | null;
}

/** The fields of a task document about its model calls. */
export type TaskUsageFields = Pick<
  TaskDoc,
  "model" | "tokensIn" | "tokensOut" | "modelCalls" | "modelLatencyMs" | "usage" | "attemptUsage"
>;

/** No model call: the usage fields of a task that made none. */
export function noTaskModelUsage(): TaskUsageFields {
  return { model: null, tokensIn: 0, tokensOut: 0, modelCalls: 0, modelLatencyMs: 0, usage: null, attemptUsage: [] };
}

/** Model usage summed over several calls. */
export interface UsageTotals {
  tokensIn: number;
  tokensOut: number;
  calls: number;
  latencyMs: number;
}

/**
 * One planning attempt of a goal (or of a project's phase): the PlanRequested and, once answered,
 * its PlanProposed.
 */
export interface PlanAttemptDoc {
  requestId: string;
  phase: Phase | null;
  attempt: number;
  maxAttempts: number | null;
  /** REQUESTED until answered; then ACCEPTED or REFUSED (no plan, or one the president refused). */
  status: "REQUESTED" | "ACCEPTED" | "REFUSED";
  /** The model configuration asked (PlanRequested.model, a topology 'models' name). */
  modelConfig: string | null;
  /** Problems of the previous attempt given to the planner. */
  feedback: string[];
  requestedAt: Date | null;
  /** Planner that answered, with its version (e.g. model/v1); null until answered. */
  planner: string | null;
  /** null until answered. */
  accepted: boolean | null;
  problems: string[];
  error: string | null;
  usage: UsageDoc | null;
  /** Tasks the planner proposed; null until answered. */
  taskCount: number | null;
  answeredAt: Date | null;
}

/** One resource request made for a goal's task and its answer (polity.governance.events). */
export interface AllocationDoc {
  requestId: string;
  /** ResourceAllocated.allocationId; null until allocated. */
  allocationId: string | null;
  taskId: string | null;
  /** The agent that asked (a governor or sub-master), to which the resource is allocated. */
  requesterId: string;
  kind: ResourceKind;
  /** Quantity asked, decimal(18,4) string, in `unit`. */
  amount: string;
  /** Quantity granted, decimal(18,4) string; null unless allocated. */
  granted: string | null;
  unit: string;
  status: "REQUESTED" | "ALLOCATED" | "DENIED";
  /** Why it was denied. */
  reasons: string[];
  requestedAt: Date | null;
  answeredAt: Date | null;
  expiresAt: Date | null;
}

/** A ConstitutionalViolationDetected about a goal. */
export interface ViolationDoc {
  violationId: string;
  taskId: string | null;
  agentId: string | null;
  policyId: string;
  policyVersion: number;
  principle: string;
  description: string;
  severity: Severity;
  enforcement: EnforcementAction;
  at: Date;
}

/**
 * One kind of resource a goal's tasks asked for: requests and their answers, what was granted, and
 * what the allocations hold now, by the rule of processors/domain/resources.ts (held()): a cancelled
 * task's allocation holds nothing; a completed task's BUDGET holds its actual cost, its API_QUOTA the
 * model calls its attempts made, its AGENT_CAPACITY slot nothing; any other holds what was granted.
 */
export interface ResourceUse {
  kind: ResourceKind;
  unit: string;
  requests: number;
  allocated: number;
  denied: number;
  /** decimal(18,4) string. */
  granted: string;
  /** decimal(18,4) string. */
  held: string;
}

/** Per kind of resource, what an agent was allocated (every ResourceAllocated naming it, summed). */
export interface AgentResourceTotals {
  unit: string;
  allocations: number;
  /** The granted amounts summed, in ten-thousandths (kept with $inc: exact and commutative). */
  grantedTenThousandths: number;
  /** The same as a decimal(18,4) string. */
  granted: string;
}

/** A project's phase: where it stands and how far its tasks are. */
export interface PhaseSummary {
  phase: Phase;
  /**
   * PENDING (not entered), ACTIVE (the project is in it), COMPLETED (left, or the project completed
   * in it), FAILED or STOPPED (the project ended that way in it).
   */
  status: "PENDING" | "ACTIVE" | "COMPLETED" | "FAILED" | "STOPPED";
  startedAt: Date | null;
  endedAt: Date | null;
  /** The phase's tasks (created so far), completed ones, and those whose current attempt failed. */
  tasksTotal: number;
  tasksCompleted: number;
  tasksFailed: number;
  /** tasksCompleted / tasksTotal, 0 to 1 (0 with no task). */
  progress: number;
}

export interface GoalDoc {
  _id: string;
  _pos: Positions;
  goalId: string;
  tenantId: string | null;
  title: string | null;
  description: string | null;
  kind: GoalKind | null;
  topology: Topology | null;
  status: GoalStatus | null;
  priority: number | null;
  domainHints: string[];
  constraints: Entries;
  deadline: Date | null;
  budget: string | null;
  currentPhase: Phase | null;
  phases: PhaseProgress[];
  /** Planner of the last decomposition (GoalDecomposed.planner); per phase in `phases` for a project. */
  planner: string | null;
  /** Every planning attempt (model planner), in log order. */
  plans: PlanAttemptDoc[];
  /** The plans' model calls summed. */
  planUsage: UsageTotals;
  result: string | null;
  outputs: Entries;
  /** Why the goal ended badly (rejected, failed, stopped); null otherwise. */
  failure: { reason: string; code: string | null; failedTaskIds: string[] } | null;
  /** Version of the goal aggregate (events of polity.goals.events applied). */
  version: number;
  submittedAt: Date | null;
  completedAt: Date | null;
  /** Count of the goal's tasks per status; statuses with no task are absent. */
  taskSummary: Partial<Record<TaskStatus, number>>;
  tasksTotal: number;
  /** Share of the goal's tasks completed, 0 to 1. */
  progress: number;
  /**
   * computeCost is a decimal(18,4) string, like every cost in the log, so sums stay exact. apiCalls
   * counts the external (model) API calls of the goal: every task attempt's and plan's usage.calls.
   * resources: per kind, the goal's resource requests (absent on documents written before).
   */
  resourceConsumption: { computeCost: string; agentMs: number; apiCalls?: number; resources?: ResourceUse[] };
  /**
   * The tasks' model calls summed over every attempt, and the cost of their completed attempts that
   * called a model (decimal(18,4) string); with planUsage, every model call of the goal.
   */
  taskUsage: UsageTotals & { cost: string };
  escalations: { open: number; total: number };
  /**
   * Governors (sub-masters in dgm) holding the goal's tasks, sorted; governorId the one holding the
   * most of them (ties: the first by id), null before any assignment. Summaries, like mayorIds.
   */
  governorId?: string | null;
  governorIds?: string[];
  mayorIds?: string[];
  /** A project's eight phases in SDLC order; empty for a goal. */
  phaseProgress?: PhaseSummary[];
  /** Resource requests made for the goal's tasks, in log order (polity.governance.events). */
  allocations?: AllocationDoc[];
  /** Constitutional violations found about the goal, in log order. */
  violations?: ViolationDoc[];
  /** Policy decisions (PolicyEvaluated) about the goal, counted by decision. */
  policyDecisions?: Partial<Record<PolicyDecision, number>>;
}

export interface TaskDoc {
  _id: string;
  _pos: Positions;
  goalId: string;
  taskId: string;
  tenantId: string;
  title: string;
  description: string | null;
  domain: string;
  specialization: string | null;
  phase: Phase | null;
  dependsOn: string[];
  priority: number;
  maxAttempts: number;
  parentTaskId: string | null;
  deadline: Date | null;
  status: TaskStatus;
  attempt: number;
  /** Agent holding the current attempt at each tier below the top (GOVERNOR/SUB_MASTER, MAYOR, WORKER). */
  assignees: Partial<Record<Tier, string>>;
  /** Every agent the current attempt was assigned to, for "tasks of agent X" queries. */
  holders: string[];
  executor: ExecutorKind | null;
  progress: number;
  result: string | null;
  outputs: Entries;
  /** Sum of the cost of every attempt, decimal(18,4) string. */
  cost: string;
  /** Execution time of every attempt, summed, in milliseconds. */
  agentMs: number;
  failures: number;
  failedOn: string[];
  lastFailure: { agentId: string; reason: string; kind: TaskFailureKind | "TIMEOUT"; retryable: boolean } | null;
  /** Model that answered the last attempt that called one; null when no attempt did. */
  model: string | null;
  /** Tokens, calls and latency of every attempt's model calls, summed. */
  tokensIn: number;
  tokensOut: number;
  modelCalls: number;
  modelLatencyMs: number;
  /** The model usage of the last attempt that called a model (with its digests and cost); null when none did. */
  usage: AttemptUsage | null;
  /** Every attempt that called a model, by attempt (the first usage recorded for an attempt counts). */
  attemptUsage: AttemptUsage[];
  cancellation: { cause: string; reason: string } | null;
  timings: {
    createdAt: Date;
    assignedAt: Date | null;
    acceptedAt: Date | null;
    startedAt: Date | null;
    completedAt: Date | null;
    /** Execution time of the attempt that ended the task. */
    durationMs: number | null;
  };
}

export interface AgentDoc {
  _id: string;
  _pos: Positions;
  agentId: string;
  /** The owning tenant (AgentRegistered's envelope tenant, processors/domain/kernel/tenancy.ts); null: platform-wide. */
  tenantId?: string | null;
  name: string | null;
  tier: Tier | null;
  topology: Topology | null;
  domain: string | null;
  specialization: string | null;
  superiorId: string | null;
  subordinates: string[];
  capacity: number | null;
  executor: ExecutorKind | null;
  labels: Entries;
  heartbeatIntervalMs: number | null;
  status: string | null;
  load: number | null;
  registeredAt: Date | null;
  lastHeartbeat: Date | null;
  heartbeatSequence: number | null;
  failure: { reason: string; at: Date } | null;
  termination: { cause: string; reason: string; at: Date } | null;
  /** `goalId/taskId` of the open tasks the agent holds. */
  currentTasks: string[];
  /** The same tasks that belong to a phase, as `goalId/taskId@PHASE` (kept beside currentTasks). */
  currentTaskPhases?: string[];
  /** The latest phase, in SDLC order, of the project tasks it holds; null when it holds none. */
  currentPhase?: Phase | null;
  /** Goals (projects) it holds open tasks of, sorted. */
  assignedProjects?: string[];
  /** What it was allocated, per kind of resource; absent before its first allocation. */
  resourceAllocation?: Partial<Record<ResourceKind, AgentResourceTotals>>;
  performance: {
    tasksCompleted: number;
    tasksFailed: number;
    totalCompletionMs: number;
    avgCompletionMs: number | null;
    successRate: number | null;
  };
}

export interface EscalationDoc {
  _id: string;
  _pos: Positions;
  escalationId: string;
  goalId: string;
  taskId: string | null;
  kind: EscalationKind | null;
  severity: Severity | null;
  from: { agentId: string; tier: Tier } | null;
  to: { agentId: string | null; tier: Tier } | null;
  reason: string | null;
  reasonChain: string[];
  previousEscalationId: string | null;
  status: "OPEN" | "RESOLVED";
  outcome: EscalationOutcome | null;
  decision: string | null;
  reassignedTo: string | null;
  raisedAt: Date | null;
  resolvedAt: Date | null;
}

export interface PolicyVersion {
  version: number;
  description: string;
  rules: string;
  appliesToTiers: Tier[];
  domains: string[];
  precedence: number;
  effectiveFrom: Date;
  rationale: string | null;
  at: Date;
}

export interface PolicyDoc {
  _id: string;
  _pos: Positions;
  policyId: string;
  /** The owning tenant (PolicyDefined's envelope tenant, processors/domain/kernel/tenancy.ts); null: platform-wide. */
  tenantId?: string | null;
  name: string | null;
  category: PolicyCategory | null;
  status: "ACTIVE" | "RETIRED";
  currentVersion: number;
  versions: PolicyVersion[];
  retired: { reason: string; effectiveFrom: Date; replacedBy: string | null } | null;
}

export interface CheckpointDoc {
  _id: string;
  topic: string;
  partition: number;
  next: number;
}

/** The field of `_pos` for a topic partition; dots are path separators in MongoDB updates. */
export function positionField(topic: string, partition: number): string {
  return `${topic.replace(/\./g, "_")}_${partition}`;
}

/** The goal's planning attempt of `requestId`, added (in log order) when it is not there yet. */
function planAttempt(
  goal: Pick<GoalDoc, "plans">,
  requestId: string,
  phase: Phase | null,
  attempt: number,
): PlanAttemptDoc {
  let plan = goal.plans.find((p) => p.requestId === requestId);
  if (!plan) {
    plan = {
      requestId,
      phase,
      attempt,
      maxAttempts: null,
      status: "REQUESTED",
      modelConfig: null,
      feedback: [],
      requestedAt: null,
      planner: null,
      accepted: null,
      problems: [],
      error: null,
      usage: null,
      taskCount: null,
      answeredAt: null,
    };
    goal.plans = [...goal.plans, plan];
  }
  return plan;
}

/**
 * Folds a PlanRequested or PlanProposed into the goal's planning attempts and their summed usage
 * (shared with time travel, projections/audit/as-of.ts, so both show a plan alike).
 */
export function applyPlanEvent(
  goal: Pick<GoalDoc, "plans" | "planUsage">,
  event: { type: "PlanRequested"; value: PlanRequested } | { type: "PlanProposed"; value: PlanProposed },
  at: Date,
): void {
  if (event.type === "PlanRequested") {
    const e = event.value;
    Object.assign(planAttempt(goal, e.requestId, e.phase, e.attempt), {
      maxAttempts: e.maxAttempts,
      modelConfig: e.model,
      feedback: e.feedback,
      requestedAt: at,
    });
    return;
  }
  const e = event.value;
  const plan = planAttempt(goal, e.requestId, e.phase, e.attempt);
  // The first answer to a request counts (a copy of it at another offset changes nothing).
  if (plan.accepted !== null) return;
  Object.assign(plan, {
    status: e.accepted ? "ACCEPTED" : "REFUSED",
    planner: e.planner,
    accepted: e.accepted,
    problems: e.problems,
    error: e.error,
    usage: e.usage ? usageDoc(e.usage) : null,
    taskCount: e.tasks.length,
    answeredAt: at,
  });
  goal.planUsage = goal.plans.flatMap((p) => (p.usage ? [p.usage] : [])).reduce(addUsage, noUsage());
}

/**
 * Records an ended attempt's model usage (TaskCompleted or TaskFailed with usage) on its task, once
 * per attempt; shared with time travel.
 */
export function applyAttemptUsage(
  task: TaskUsageFields,
  event: { type: "TaskCompleted"; value: TaskCompleted } | { type: "TaskFailed"; value: TaskFailed },
): void {
  const e = event.value;
  if (!e.usage) return;
  recordUsage(task, {
    ...usageDoc(e.usage),
    attempt: e.attempt,
    outcome: event.type === "TaskCompleted" ? "COMPLETED" : "FAILED",
    cost: event.type === "TaskCompleted" ? event.value.cost : null,
  });
}

/** The model usage of a goal's tasks, every attempt counted, with the cost of the completed ones. */
export function taskUsageOf(tasks: Pick<TaskDoc, "attemptUsage">[]): UsageTotals & { cost: string } {
  const all = tasks.flatMap((t) => t.attemptUsage ?? []);
  return { ...all.reduce(addUsage, noUsage()), cost: sumCosts(all.flatMap((u) => (u.cost === null ? [] : [u.cost]))) };
}

/** Tiers whose holder of a task is recorded; the top tier decomposes and holds nothing. */
const HOLDING_TIERS: ReadonlySet<Tier> = new Set(["GOVERNOR", "SUB_MASTER", "MAYOR", "WORKER"]);

/**
 * Moves a task forward within an attempt, as processors/domain/kernel/state.ts does; false for an event
 * that is late (older attempt) or a repeat (not forward).
 */
function advance(task: TaskDoc, attempt: number, status: TaskStatus): boolean {
  if (!taskMovesForward(task, attempt, status)) return false;
  task.attempt = attempt;
  task.status = status;
  return true;
}

function setGoalStatus(goal: GoalDoc, status: GoalStatus): void {
  if (goalMovesForward(goal.status, status)) goal.status = status;
}

/**
 * Creates a document with its defaults when it does not exist yet; no effect otherwise. FerretDB
 * 1.24 drops empty arrays from $setOnInsert, so they are set again where still missing.
 */
function createOps(id: string, defaults: Document): Op[] {
  const ops: Op[] = [{ updateOne: { filter: { _id: id }, update: { $setOnInsert: defaults }, upsert: true } }];
  for (const [field, value] of Object.entries(defaults))
    if (Array.isArray(value) && value.length === 0)
      ops.push({ updateOne: { filter: { _id: id, [field]: { $exists: false } }, update: { $set: { [field]: [] } } } });
  return ops;
}

interface Entry<D> {
  doc: D;
  /** Position read for this fold's source; events at or below it were applied already. */
  readPos: number | null;
  last: number | null;
  /** The document was not in the store when loaded: it is inserted whole. */
  missing: boolean;
  /** An event at or below readPos came again: a batch applied before, maybe not to its end. */
  repeated: boolean;
}

/**
 * Documents owned by one source topic partition: read once per batch (or taken from what the store
 * wrote before, `written`), folded in memory, written back as a compare-and-set on the position
 * read. `owned` lists the fields this fold writes; the other fields of the document belong to other
 * writers and are never written from here.
 */
class Fold<D extends { _id: string; _pos: Positions }> {
  private readonly entries = new Map<string, Entry<D>>();
  /** The field and values of the groups loaded whole (loadBy), to be remembered whole after the write. */
  private groups: { field: keyof D & string; values: Set<string> } | null = null;
  private readonly key: string;

  constructor(
    private readonly db: Db,
    private readonly collection: string,
    private readonly pos: string,
    private readonly fresh: (id: string) => D,
    private readonly owned: readonly (keyof D & string)[],
    private readonly defaults: (id: string) => Document,
    private readonly written: Written,
  ) {
    this.key = foldKey(collection, pos);
  }

  async load(ids: Iterable<string>): Promise<void> {
    const wanted = [...new Set(ids)].filter((id) => !this.entries.has(id) && !this.recall(id));
    if (wanted.length === 0) return;
    const found = await findEach(this.db.collection<Stored>(this.collection), "_id", wanted);
    this.remember(wanted, found);
  }

  /**
   * Loads every document whose `field` is one of `values` (one equality find per value, unless the
   * store wrote the whole group before), and fresh documents for the `ids` not among them. Only for a
   * collection whose documents all carry `field` from their first write (a task's goalId comes from
   * its key); one field per fold.
   */
  async loadBy(field: keyof D & string, values: Iterable<string>, ids: Iterable<string>): Promise<void> {
    if (this.groups && this.groups.field !== field)
      throw new Error(`state projection: ${this.collection} loaded by ${this.groups.field} and by ${field}`);
    const groups = (this.groups ??= { field, values: new Set<string>() });
    const unknown: string[] = [];
    for (const value of new Set(values)) {
      groups.values.add(value);
      const members = this.written.group(this.key, `${field}=${value}`);
      if (members) for (const id of members) this.recall(id);
      else unknown.push(value);
    }
    const found = await findEach(this.db.collection<Stored>(this.collection), field, unknown);
    const all = new Set([...found.map((d) => d._id), ...ids]);
    this.remember(
      [...all].filter((id) => !this.entries.has(id) && !this.recall(id)),
      found,
    );
  }

  /** Takes the document from what the store wrote before, if it has it; whether it did. */
  private recall(id: string): boolean {
    if (this.entries.has(id)) return true;
    const known = this.written.get<D>(this.key, id);
    if (!known) return false;
    this.entries.set(id, { doc: known.doc, readPos: known.pos, last: null, missing: false, repeated: false });
    return true;
  }

  /** After a successful write: every document this fold holds that the store now has, as it has it. */
  private memorise(): void {
    const field = this.groups?.field;
    const members = new Map<string, string[]>();
    for (const [id, entry] of this.entries) {
      if (entry.missing && entry.last === null) continue; // not in the store
      const group = field === undefined ? null : `${field}=${String(entry.doc[field])}`;
      this.written.set(this.key, id, entry.doc, entry.last ?? entry.readPos, group);
      if (group === null) continue;
      const list = members.get(group);
      if (list) list.push(id);
      else members.set(group, [id]);
    }
    for (const value of this.groups?.values ?? []) {
      const group = `${field}=${value}`;
      this.written.setGroup(this.key, group, members.get(group) ?? []);
    }
  }

  /** Every document loaded, as folded so far (what the store holds once `write` succeeds). */
  docs(): D[] {
    return [...this.entries.values()].map((e) => e.doc);
  }

  private remember(ids: string[], found: Stored[]): void {
    const byId = new Map(found.map((d) => [d._id, d]));
    for (const id of ids) {
      const stored = byId.get(id);
      const doc = this.fresh(id);
      // The store holds what this class wrote, so its fields have the shapes of D.
      if (stored)
        for (const field of this.owned) if (stored[field] !== undefined) doc[field] = stored[field] as D[typeof field];
      const readPos = (stored?._pos as Positions | undefined)?.[this.pos];
      this.entries.set(id, {
        doc,
        readPos: typeof readPos === "number" ? readPos : null,
        last: null,
        missing: stored === undefined,
        repeated: false,
      });
    }
  }

  /** The document to apply the event at `offset` to, or undefined when it was applied already. */
  at(id: string, offset: number): D | undefined {
    const entry = this.entries.get(id);
    if (!entry) throw new Error(`state projection: ${this.collection} ${id} was not loaded before folding`);
    if (entry.readPos !== null && offset <= entry.readPos) {
      entry.repeated = true;
      return undefined;
    }
    entry.last = offset;
    return entry.doc;
  }

  /**
   * Whether the document was missing when loaded, or the batch brought an event of it that was
   * applied before: what was derived from it then may not have been written.
   */
  newOrRepeated(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && (entry.missing || entry.repeated);
  }

  /** The document as folded so far, whether or not this batch changes it. */
  peek(id: string): D | undefined {
    return this.entries.get(id)?.doc;
  }

  /**
   * Inserts the documents that were missing when loaded, whole, and updates the others with a
   * compare-and-set on the position read. A document that another writer created since (another
   * fold of the same batch, or another host) takes the update path instead. (An update per new
   * document and one more per empty array default were half the projection's statements.)
   */
  async write(): Promise<void> {
    const creates: Op[] = [];
    const ops: Op[] = [];
    const inserts: Stored[] = [];
    const update = (id: string, entry: Entry<D>) => {
      const set: Document = { [`_pos.${this.pos}`]: entry.last };
      for (const field of this.owned) set[field] = entry.doc[field];
      ops.push({ updateOne: { filter: atPosition(id, this.pos, entry.readPos), update: { $set: set } } });
    };
    for (const [id, entry] of this.entries) {
      if (entry.last === null) continue;
      if (!entry.missing) {
        update(id, entry);
        continue;
      }
      const defaults = this.defaults(id);
      const doc: Stored = { ...defaults, _id: id, _pos: { ...(defaults._pos as Positions), [this.pos]: entry.last } };
      for (const field of this.owned) doc[field] = entry.doc[field];
      inserts.push(doc);
    }
    const collection = this.db.collection<Stored>(this.collection);
    for (const id of await insertNew(collection, inserts)) {
      const entry = this.entries.get(id)!;
      creates.push(...createOps(id, this.defaults(id)));
      update(id, entry);
    }
    if (ops.length > 0) {
      await bulkWrite(collection, creates, true);
      const matched = await bulkWrite(collection, ops, true);
      if (matched !== ops.length) throw positionMoved(ops.length - matched, this.collection, this.pos);
    }
    this.memorise();
  }
}

/** Document `id` while its position for `pos` is still `read` (null: it has none yet). */
function atPosition(id: string, pos: string, read: number | null): Document {
  return { _id: id, [`_pos.${pos}`]: read ?? { $exists: false } };
}

/** A compare-and-set on a position found `n` documents moved since they were read. */
function positionMoved(n: number, collection: string, pos: string): Error {
  return new Error(
    `state projection: ${n} ${collection} document(s) changed under the position ${pos} while a batch ` +
      "was applied; another host is projecting the same partition. The batch is retried from what that host wrote.",
  );
}

/** Inserts the documents, unordered; returns the ids that were there already (duplicate keys). */
export async function insertNew(collection: Collection<Stored>, docs: Stored[]): Promise<string[]> {
  const existing: string[] = [];
  for (let i = 0; i < docs.length; i += INSERTS_PER_COMMAND) {
    const part = docs.slice(i, i + INSERTS_PER_COMMAND);
    try {
      await collection.insertMany(part, { ordered: false });
    } catch (error) {
      const failed = error instanceof MongoBulkWriteError ? error.writeErrors : null;
      const list = Array.isArray(failed) ? failed : failed ? [failed] : [];
      if (list.length === 0 || list.some((e) => e.code !== DUPLICATE_KEY)) throw error;
      existing.push(...list.map((e) => part[e.index]!._id));
    }
  }
  return existing;
}

const DUPLICATE_KEY = 11000;
/** Documents per insert command; inserts do not hold FerretDB's connections as updates do (below). */
const INSERTS_PER_COMMAND = 500;

/**
 * Update operations per command. FerretDB 1.24 on its SQLite backend kept a connection of its pool
 * (100) open for every matching update statement until the whole command ends; one bulkWrite of
 * 100 or more matching updates therefore waits for a connection it holds itself, and FerretDB then
 * answers no query at all until it is restarted (found from a goroutine dump: 100 open
 * database/sql Rows in one MsgUpdate waiting in BeginTx; reproduced with 150 updateOne on existing
 * documents, while 99 pass). The stack now runs FerretDB on PostgreSQL; small commands keep any
 * backend far below its pool, also with other clients.
 */
export const MAX_OPS_PER_COMMAND = 25;

/** bulkWrite in commands of at most MAX_OPS_PER_COMMAND operations, in order; returns the matched count. */
async function bulkWrite(collection: Collection<Stored>, ops: Op[], ordered: boolean): Promise<number> {
  let matched = 0;
  for (let i = 0; i < ops.length; i += MAX_OPS_PER_COMMAND) {
    const result = await collection.bulkWrite(ops.slice(i, i + MAX_OPS_PER_COMMAND), { ordered });
    matched += result.matchedCount;
  }
  return matched;
}

/** The update operators an effect may use: each commutes with what other partitions write. */
type EffectModifiers = {
  $inc?: Record<string, number>;
  $set?: Record<string, unknown>;
  $addToSet?: Record<string, unknown>;
  $pull?: Record<string, unknown>;
};

/**
 * Updates of documents that several partitions write (an agent's tasks and performance), folded
 * per document into at most two updates a batch, both guarded by the document's position for this
 * partition. Counters add up, a $set keeps the last value, and a set member ends as its last
 * $addToSet or $pull left it; the events at or below the stored position were applied already and
 * are dropped. (One update per event cost 7 000 statements for 8 000 events, most of the state
 * projection's time on FerretDB.)
 *
 * Crash safety: the removals go first and leave the position alone; the additions, counters and
 * the new position follow in one update. A crash between the two leaves the position where it was,
 * so the redelivered batch folds the same events again (a member's last operation decides it either
 * way) and the counters are added once.
 */
class Effects {
  private readonly byDoc = new Map<string, { offset: number; modifiers: EffectModifiers }[]>();

  constructor(
    private readonly pos: string,
    private readonly defaults: (id: string) => Document,
    private readonly written: Written,
  ) {}

  /** Adds the modifiers of document `id` for the event at `offset`; events are added in log order. */
  add(id: string, offset: number, modifiers: EffectModifiers): void {
    let events = this.byDoc.get(id);
    if (!events) this.byDoc.set(id, (events = []));
    events.push({ offset, modifiers });
  }

  touched(): string[] {
    return [...this.byDoc.keys()];
  }

  async write(db: Db, collection: string): Promise<void> {
    if (this.byDoc.size === 0) return;
    const field = `_pos.${this.pos}`;
    const coll = db.collection<Stored>(collection);
    // Positions this store wrote before are known without reading them (written.ts).
    const key = foldKey(collection, this.pos);
    const readPos = new Map<string, number | null | undefined>();
    for (const id of this.byDoc.keys()) {
      const known = this.written.get<null>(key, id);
      if (known) readPos.set(id, known.pos);
    }
    const unknown = [...this.byDoc.keys()].filter((id) => !readPos.has(id));
    for (const d of await findEach(coll, "_id", unknown, {}, { projection: { [field]: 1 } }))
      readPos.set(d._id, (d._pos as Positions | undefined)?.[this.pos]);
    const wrote = new Map<string, number | null>();
    const creates: Op[] = [];
    const ops: Op[] = [];
    for (const [id, events] of this.byDoc) {
      const read = readPos.get(id);
      const from = typeof read === "number" ? read : null;
      const pending = events.filter((e) => from === null || e.offset > from);
      wrote.set(id, pending.length === 0 ? from : pending[pending.length - 1]!.offset);
      if (pending.length === 0) continue;
      if (!readPos.has(id)) creates.push(...createOps(id, this.defaults(id)));
      const filter = atPosition(id, this.pos, from);
      const { removals, update } = foldEffects(pending);
      update.$set = { ...update.$set, [field]: pending[pending.length - 1]!.offset };
      if (removals) ops.push({ updateOne: { filter, update: { $pullAll: removals as Document } } });
      ops.push({ updateOne: { filter, update } });
    }
    await bulkWrite(coll, creates, true);
    // Ordered: a document's removals land before the update that moves its position.
    const matched = await bulkWrite(coll, ops, true);
    if (matched !== ops.length) throw positionMoved(ops.length - matched, collection, this.pos);
    for (const [id, pos] of wrote) this.written.set(key, id, null, pos);
  }
}

/** One document's effects, in log order, as its net removals and one update of everything else. */
export function foldEffects(events: { modifiers: EffectModifiers }[]): {
  removals: Record<string, unknown[]> | null;
  update: Record<string, Document>;
} {
  const inc: Record<string, number> = {};
  const set: Record<string, unknown> = {};
  /** Per array field, each member's last operation (true: added). */
  const members = new Map<string, Map<string, { value: unknown; added: boolean }>>();
  const member = (fields: Record<string, unknown>, added: boolean) => {
    for (const [path, value] of Object.entries(fields)) {
      let last = members.get(path);
      if (!last) members.set(path, (last = new Map()));
      last.set(JSON.stringify(value), { value, added });
    }
  };
  for (const { modifiers } of events) {
    for (const [path, by] of Object.entries(modifiers.$inc ?? {})) inc[path] = (inc[path] ?? 0) + by;
    Object.assign(set, modifiers.$set);
    if (modifiers.$addToSet) member(modifiers.$addToSet, true);
    if (modifiers.$pull) member(modifiers.$pull, false);
  }
  const additions: Record<string, Document> = {};
  const removals: Record<string, unknown[]> = {};
  for (const [path, last] of members) {
    const values = [...last.values()];
    const added = values.filter((m) => m.added).map((m) => m.value);
    const removed = values.filter((m) => !m.added).map((m) => m.value);
    if (added.length > 0) additions[path] = { $each: added };
    if (removed.length > 0) removals[path] = removed;
  }
  const update: Record<string, Document> = { $set: set };
  if (Object.keys(inc).length > 0) update.$inc = inc;
  if (Object.keys(additions).length > 0) update.$addToSet = additions;
  return { removals: Object.keys(removals).length > 0 ? removals : null, update };
}

/**
 * Array fields filled from several partitions with $addToSet, in whatever order the partitions are
 * applied: their order means nothing, so comparisons (a rebuild against the live model) sort them.
 */
export const UNORDERED_FIELDS = ["subordinates", "currentTasks", "currentTaskPhases"] as const;

export const STATE_COLLECTIONS = ["goals", "tasks", "agents", "escalations", "policies", "checkpoints"] as const;
export type StateCollection = (typeof STATE_COLLECTIONS)[number];

/**
 * The collection names of a state store. A rebuild writes beside the live collections under a
 * prefix and swaps them in by renaming (FerretDB cannot rename across databases).
 */
export function stateCollections(prefix = ""): Record<StateCollection, string> {
  return Object.fromEntries(STATE_COLLECTIONS.map((c) => [c, `${prefix}${c}`])) as Record<StateCollection, string>;
}

function goalDefaults(id: string): Document {
  return {
    goalId: id,
    _pos: {},
    taskSummary: {},
    tasksTotal: 0,
    progress: 0,
    resourceConsumption: { computeCost: "0.0000", agentMs: 0 },
    taskUsage: noTaskUsage(),
    escalations: { open: 0, total: 0 },
  };
}

export const noUsage = (): UsageTotals => ({ tokensIn: 0, tokensOut: 0, calls: 0, latencyMs: 0 });
export const noTaskUsage = (): UsageTotals & { cost: string } => ({ ...noUsage(), cost: "0.0000" });

/**
 * Every model call of a goal: its plans' and its tasks' usage summed, with the cost of its completed
 * model attempts. Readers add the two parts, each kept by its own writer (the goal's partition for
 * plans, the task summary for tasks); a document written before they existed counts zero.
 */
export function goalModelUsage(g: Partial<Pick<GoalDoc, "planUsage" | "taskUsage">>): UsageTotals & { cost: string } {
  const plans = g.planUsage ?? noUsage();
  const tasks = g.taskUsage ?? noTaskUsage();
  const sum = addUsage(
    { tokensIn: plans.tokensIn, tokensOut: plans.tokensOut, calls: plans.calls, latencyMs: plans.latencyMs },
    tasks,
  );
  return { ...sum, cost: tasks.cost };
}

/** The usage as the document keeps it: the record's fields only, in a fixed order. */
function usageDoc(u: ModelUsage): UsageDoc {
  return {
    model: u.model,
    tokensIn: Number(u.tokensIn),
    tokensOut: Number(u.tokensOut),
    calls: u.calls,
    latencyMs: Number(u.latencyMs),
    promptDigest: u.promptDigest,
    answerDigest: u.answerDigest,
  };
}

function addUsage<T extends UsageTotals>(total: T, u: UsageTotals): T {
  total.tokensIn += u.tokensIn;
  total.tokensOut += u.tokensOut;
  total.calls += u.calls;
  total.latencyMs += u.latencyMs;
  return total;
}

/**
 * Records an ended attempt's model usage on its task once per attempt (a copy of the event at another
 * offset adds nothing), whether or not the event still moves the task: the tokens were spent either
 * way. The totals are recomputed from the attempts, so they never drift.
 */
function recordUsage(task: TaskUsageFields, usage: AttemptUsage): void {
  if (task.attemptUsage.some((u) => u.attempt === usage.attempt)) return;
  task.attemptUsage = [...task.attemptUsage, usage].sort((a, b) => a.attempt - b.attempt);
  const totals = task.attemptUsage.reduce(addUsage, noUsage());
  task.tokensIn = totals.tokensIn;
  task.tokensOut = totals.tokensOut;
  task.modelCalls = totals.calls;
  task.modelLatencyMs = totals.latencyMs;
  task.usage = task.attemptUsage.at(-1)!;
  task.model = task.usage.model;
}

/** A held task of a phase as kept in an agent's currentTaskPhases. */
export function phaseTag(key: string, phase: Phase): string {
  return `${key}@${phase}`;
}

/** The latest phase, in SDLC order, of currentTaskPhases entries; null when there is none. */
export function latestPhase(tags: readonly string[]): Phase | null {
  let latest = -1;
  for (const tag of tags) latest = Math.max(latest, PHASES.indexOf(tag.slice(tag.lastIndexOf("@") + 1) as Phase));
  return latest < 0 ? null : PHASES[latest]!;
}

/** The goals of `goalId/taskId` keys, each once, sorted. */
export function goalsOf(keys: readonly string[]): string[] {
  return [...new Set(keys.map((k) => k.slice(0, k.indexOf("/"))))].sort();
}

/** Agents holding the tasks at any of `tiers`, with how many tasks each holds: most first, then by id. */
function holdersByTier(tasks: Pick<TaskDoc, "assignees">[], tiers: Tier[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const t of tasks)
    for (const tier of tiers) {
      const id = t.assignees?.[tier];
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  return [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
}

/** A goal's governors (sub-masters in dgm) and mayors from its tasks' assignees, as GoalDoc keeps them. */
export function tierHolders(tasks: Pick<TaskDoc, "assignees">[]): {
  governorId: string | null;
  governorIds: string[];
  mayorIds: string[];
} {
  const governors = holdersByTier(tasks, ["GOVERNOR", "SUB_MASTER"]);
  return {
    governorId: governors[0]?.[0] ?? null,
    governorIds: governors.map(([id]) => id).sort(),
    mayorIds: holdersByTier(tasks, ["MAYOR"])
      .map(([id]) => id)
      .sort(),
  };
}

/** What an allocation holds now: processors/domain/resources.ts held(), on the task documents. */
function heldBy(a: AllocationDoc, task: Pick<TaskDoc, "status" | "cost" | "modelCalls"> | undefined): bigint {
  if (a.status !== "ALLOCATED") return 0n;
  if (task?.status === "CANCELLED") return 0n;
  if (task?.status === "COMPLETED") {
    if (a.kind === "BUDGET") return toUnits(task.cost);
    if (a.kind === "AGENT_CAPACITY") return 0n;
    if (a.kind === "API_QUOTA") return toUnits(String(task.modelCalls ?? 0));
  }
  return toUnits(a.granted ?? a.amount);
}

/** A goal's resource requests per kind (kinds in name order), with what they were granted and hold now. */
export function resourceUses(
  allocations: readonly AllocationDoc[],
  tasks: Pick<TaskDoc, "taskId" | "status" | "cost" | "modelCalls">[],
): ResourceUse[] {
  const byKind = new Map<ResourceKind, { use: ResourceUse; granted: bigint; held: bigint }>();
  const byTask = new Map(tasks.map((t) => [t.taskId, t]));
  for (const a of allocations) {
    let k = byKind.get(a.kind);
    if (!k) {
      k = {
        use: { kind: a.kind, unit: a.unit, requests: 0, allocated: 0, denied: 0, granted: "", held: "" },
        granted: 0n,
        held: 0n,
      };
      byKind.set(a.kind, k);
    }
    k.use.requests += 1;
    if (a.status === "ALLOCATED") {
      k.use.allocated += 1;
      k.granted += toUnits(a.granted ?? "0");
    }
    if (a.status === "DENIED") k.use.denied += 1;
    k.held += heldBy(a, a.taskId === null ? undefined : byTask.get(a.taskId));
  }
  return [...byKind.values()]
    .sort((x, y) => (x.use.kind < y.use.kind ? -1 : 1))
    .map((k) => ({ ...k.use, granted: formatCost(k.granted), held: formatCost(k.held) }));
}

/** The fields of a goal document its summary reads (goalSummary); allocations come from governance batches. */
const GOAL_SUMMARY_FIELDS = [
  "kind",
  "status",
  "phases",
  "planUsage",
  "allocations",
] as const satisfies readonly (keyof GoalDoc)[];
type GoalSummarySource = Pick<GoalDoc, (typeof GOAL_SUMMARY_FIELDS)[number]>;

/**
 * A goal's summary (task summary, consumption, escalation counts, governors and mayors, phase
 * progress), computed from the goal document's GOAL_SUMMARY_FIELDS (undefined: not written yet), its
 * task documents and its escalations.
 */
export function goalSummary(
  goal: GoalSummarySource | undefined,
  tasks: TaskDoc[],
  escalations: Pick<EscalationDoc, "status">[],
): Document {
  // A task document exists before its TaskCreated only when an event of it came first; it is not counted.
  const mine = tasks.filter((t) => t.attempt > 0);
  const summary: Partial<Record<TaskStatus, number>> = {};
  for (const t of mine) summary[t.status] = (summary[t.status] ?? 0) + 1;
  const taskUsage = taskUsageOf(mine);
  return {
    taskSummary: summary,
    tasksTotal: mine.length,
    progress: mine.length === 0 ? 0 : (summary.COMPLETED ?? 0) / mine.length,
    resourceConsumption: {
      computeCost: sumCosts(mine.map((t) => t.cost)),
      agentMs: mine.reduce((s, t) => s + t.agentMs, 0),
      apiCalls: taskUsage.calls + (goal?.planUsage?.calls ?? 0),
      resources: resourceUses(goal?.allocations ?? [], mine),
    },
    taskUsage,
    escalations: { open: escalations.filter((e) => e.status === "OPEN").length, total: escalations.length },
    ...tierHolders(mine),
    phaseProgress: goal?.kind === "PROJECT" ? phaseProgressOf(goal, mine) : [],
  };
}

/**
 * What goalSummary takes from the goal's own fields that a goals-topic batch writes: its plans' model
 * calls, and for a project its status and phases. Two goal documents with the same inputs and the same
 * allocations, tasks and escalations have the same summary (test/integration/state-store-writes.test.ts).
 */
export function goalSummaryInputs(goal: Pick<GoalDoc, "kind" | "status" | "phases" | "planUsage">): string {
  const calls = goal.planUsage?.calls ?? 0;
  return JSON.stringify(goal.kind === "PROJECT" ? [calls, goal.status, goal.phases] : [calls]);
}

/** A project's eight phases: its own dates and status (goal.phases, goal.status) and its tasks'. */
export function phaseProgressOf(
  goal: Pick<GoalDoc, "status" | "phases">,
  tasks: Pick<TaskDoc, "phase" | "status">[],
): PhaseSummary[] {
  return PHASES.map((phase) => {
    const entered = (goal.phases ?? []).find((p) => p.phase === phase);
    const mine = tasks.filter((t) => t.phase === phase);
    const completed = mine.filter((t) => t.status === "COMPLETED").length;
    let status: PhaseSummary["status"] = "PENDING";
    if (entered)
      status = entered.endedAt
        ? "COMPLETED"
        : goal.status === "FAILED" || goal.status === "REJECTED"
          ? "FAILED"
          : goal.status === "STOPPED"
            ? "STOPPED"
            : "ACTIVE";
    return {
      phase,
      status,
      startedAt: entered?.startedAt ?? null,
      endedAt: entered?.endedAt ?? null,
      tasksTotal: mine.length,
      tasksCompleted: completed,
      tasksFailed: mine.filter((t) => t.status === "FAILED" || t.status === "TIMED_OUT").length,
      progress: mine.length === 0 ? 0 : completed / mine.length,
    };
  });
}

function agentDefaults(id: string): Document {
  return {
    agentId: id,
    _pos: {},
    subordinates: [],
    currentTasks: [],
    currentTaskPhases: [],
    performance: { tasksCompleted: 0, tasksFailed: 0, totalCompletionMs: 0, avgCompletionMs: null, successRate: null },
  };
}

const bare = (): Document => ({ _pos: {} });

const GOAL_OWNED = [
  "goalId",
  "tenantId",
  "title",
  "description",
  "kind",
  "topology",
  "status",
  "priority",
  "domainHints",
  "constraints",
  "deadline",
  "budget",
  "currentPhase",
  "phases",
  "planner",
  "plans",
  "planUsage",
  "result",
  "outputs",
  "failure",
  "version",
  "submittedAt",
  "completedAt",
] as const satisfies readonly (keyof GoalDoc)[];

function freshGoal(id: string): GoalDoc {
  return {
    _id: id,
    _pos: {},
    goalId: id,
    tenantId: null,
    title: null,
    description: null,
    kind: null,
    topology: null,
    status: null,
    priority: null,
    domainHints: [],
    constraints: [],
    deadline: null,
    budget: null,
    currentPhase: null,
    phases: [],
    planner: null,
    plans: [],
    planUsage: noUsage(),
    result: null,
    outputs: [],
    failure: null,
    version: 0,
    submittedAt: null,
    completedAt: null,
    taskSummary: {},
    tasksTotal: 0,
    progress: 0,
    resourceConsumption: { computeCost: "0.0000", agentMs: 0 },
    taskUsage: noTaskUsage(),
    escalations: { open: 0, total: 0 },
    allocations: [],
    violations: [],
    policyDecisions: {},
  };
}

/** The fields of a goal written from its polity.governance.events partition. */
const GOVERNANCE_OWNED = ["allocations", "violations", "policyDecisions"] as const satisfies readonly (keyof GoalDoc)[];

const TASK_OWNED = [
  "goalId",
  "taskId",
  "tenantId",
  "title",
  "description",
  "domain",
  "specialization",
  "phase",
  "dependsOn",
  "priority",
  "maxAttempts",
  "parentTaskId",
  "deadline",
  "status",
  "attempt",
  "assignees",
  "holders",
  "executor",
  "progress",
  "result",
  "outputs",
  "cost",
  "agentMs",
  "failures",
  "failedOn",
  "lastFailure",
  "model",
  "tokensIn",
  "tokensOut",
  "modelCalls",
  "modelLatencyMs",
  "usage",
  "attemptUsage",
  "cancellation",
  "timings",
] as const satisfies readonly (keyof TaskDoc)[];

/** A task known only by id until its TaskCreated is folded; `created` tells the two apart. */
function freshTask(id: string): TaskDoc {
  const slash = id.indexOf("/");
  return {
    _id: id,
    _pos: {},
    goalId: id.slice(0, slash),
    taskId: id.slice(slash + 1),
    tenantId: "",
    title: "",
    description: null,
    domain: "",
    specialization: null,
    phase: null,
    dependsOn: [],
    priority: 0,
    maxAttempts: 0,
    parentTaskId: null,
    deadline: null,
    status: "PENDING",
    attempt: 0,
    assignees: {},
    holders: [],
    executor: null,
    progress: 0,
    result: null,
    outputs: [],
    cost: "0.0000",
    agentMs: 0,
    failures: 0,
    failedOn: [],
    lastFailure: null,
    model: null,
    tokensIn: 0,
    tokensOut: 0,
    modelCalls: 0,
    modelLatencyMs: 0,
    usage: null,
    attemptUsage: [],
    cancellation: null,
    timings: {
      createdAt: new Date(0),
      assignedAt: null,
      acceptedAt: null,
      startedAt: null,
      completedAt: null,
      durationMs: null,
    },
  };
}

const AGENT_OWNED = [
  "agentId",
  "tenantId",
  "name",
  "tier",
  "topology",
  "domain",
  "specialization",
  "superiorId",
  "capacity",
  "executor",
  "labels",
  "heartbeatIntervalMs",
  "status",
  "load",
  "registeredAt",
  "lastHeartbeat",
  "heartbeatSequence",
  "failure",
  "termination",
] as const satisfies readonly (keyof AgentDoc)[];

function freshAgent(id: string): AgentDoc {
  return {
    _id: id,
    _pos: {},
    agentId: id,
    tenantId: null,
    name: null,
    tier: null,
    topology: null,
    domain: null,
    specialization: null,
    superiorId: null,
    subordinates: [],
    capacity: null,
    executor: null,
    labels: [],
    heartbeatIntervalMs: null,
    status: null,
    load: null,
    registeredAt: null,
    lastHeartbeat: null,
    heartbeatSequence: null,
    failure: null,
    termination: null,
    currentTasks: [],
    currentTaskPhases: [],
    performance: { tasksCompleted: 0, tasksFailed: 0, totalCompletionMs: 0, avgCompletionMs: null, successRate: null },
  };
}

const ESCALATION_OWNED = [
  "escalationId",
  "goalId",
  "taskId",
  "kind",
  "severity",
  "from",
  "to",
  "reason",
  "reasonChain",
  "previousEscalationId",
  "status",
  "outcome",
  "decision",
  "reassignedTo",
  "raisedAt",
  "resolvedAt",
] as const satisfies readonly (keyof EscalationDoc)[];

function freshEscalation(id: string): EscalationDoc {
  return {
    _id: id,
    _pos: {},
    escalationId: id,
    goalId: "",
    taskId: null,
    kind: null,
    severity: null,
    from: null,
    to: null,
    reason: null,
    reasonChain: [],
    previousEscalationId: null,
    status: "OPEN",
    outcome: null,
    decision: null,
    reassignedTo: null,
    raisedAt: null,
    resolvedAt: null,
  };
}

const POLICY_OWNED = [
  "policyId",
  "tenantId",
  "name",
  "category",
  "status",
  "currentVersion",
  "versions",
  "retired",
] as const satisfies readonly (keyof PolicyDoc)[];

function freshPolicy(id: string): PolicyDoc {
  return {
    _id: id,
    _pos: {},
    policyId: id,
    tenantId: null,
    name: null,
    category: null,
    status: "ACTIVE",
    currentVersion: 0,
    versions: [],
    retired: null,
  };
}

const num = (offset: bigint): number => Number(offset);

/** Documents as the driver sees them: string ids, any fields (the typed shapes are above). */
type Stored = { _id: string; [field: string]: unknown };
type Op = AnyBulkWriteOperation<Stored>;

/** When the event happened by the writer's clock (the envelope's occurredAt). */
function occurredAt(event: LoggedEvent["event"]): Date {
  return "envelope" in event.value ? event.value.envelope.occurredAt : new Date(0);
}

/** The string ids `pick` finds in the events, skipping events without one. */
function idsOf(events: LoggedEvent[], pick: (value: Record<string, unknown>) => unknown): string[] {
  return events.flatMap((l) => {
    const id = pick(l.event.value as unknown as Record<string, unknown>);
    return typeof id === "string" ? [id] : [];
  });
}

export class StateStore implements ProjectionStore {
  readonly name = "state";
  /** The collections this store writes: the live names, or a rebuild's prefixed ones. */
  readonly collections: Record<StateCollection, string>;

  constructor(
    readonly db: Db,
    options: { collectionPrefix?: string } = {},
  ) {
    this.collections = stateCollections(options.collectionPrefix);
  }

  /** Indexes for the gateway's queries; safe to call on every start. */
  async ensureIndexes(): Promise<void> {
    const { db } = this;
    await db.collection(this.collections.goals).createIndex({ tenantId: 1, status: 1 }, { name: "tenant_status" });
    await db.collection(this.collections.tasks).createIndex({ goalId: 1, status: 1 }, { name: "goal_status" });
    await db.collection(this.collections.tasks).createIndex({ holders: 1, status: 1 }, { name: "holder_status" });
    await db.collection(this.collections.agents).createIndex({ tier: 1, domain: 1 }, { name: "tier_domain" });
    await db.collection(this.collections.agents).createIndex({ superiorId: 1 }, { name: "superior" });
    await db.collection(this.collections.escalations).createIndex({ goalId: 1, status: 1 }, { name: "goal_status" });
    await db.collection(this.collections.policies).createIndex({ category: 1, status: 1 }, { name: "category_status" });
  }

  /**
   * What this store wrote (written.ts), forgotten on every assignment and after any failed batch.
   * A goal in flight takes about fifteen entries (itself twice, its tasks, its agents' positions):
   * 2 000 hold a burst of a hundred goals and stay a few megabytes.
   */
  private readonly written = new Written(2_000);

  /** Asked on every assignment: what this store wrote before is forgotten, the store is read again. */
  async checkpoints(): Promise<Checkpoints> {
    this.written.clear();
    const out: Checkpoints = new Map();
    const docs = await this.db.collection<CheckpointDoc>(this.collections.checkpoints).find({}).toArray();
    for (const d of docs) out.set(checkpointKey(d.topic, d.partition), BigInt(d.next));
    return out;
  }

  /**
   * FerretDB 1.24 (SQLite backend) does not update a document atomically: concurrent updates of one
   * document lose each other's changes (measured: 180 concurrent $inc ended at 23) and concurrent
   * upserts of one new id fail with duplicate keys. The host applies up to six partitions at once, and
   * an agent document is written from many; so this store applies one batch at a time.
   */
  private queue: Promise<void> = Promise.resolve();

  apply(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    const run = this.queue.then(() =>
      this.applyNow(topic, partition, events, next).catch((e: unknown) => {
        // A batch that failed part-way (or found a document moved by another host) may have left
        // what the store remembers ahead of, or behind, what it holds.
        this.written.clear();
        throw e;
      }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    const pos = positionField(topic, partition);
    switch (topic) {
      case "polity.goals.events":
        await this.applyGoals(pos, events);
        break;
      case "polity.tasks.events":
        await this.applyTasks(pos, events);
        break;
      case "polity.agents.events":
        await this.applyAgents(pos, events);
        break;
      case "polity.policies.events":
        await this.applyPolicies(pos, events);
        break;
      case "polity.governance.events":
        await this.applyGovernance(pos, events);
        break;
      default:
        throw new Error(
          `state projection: topic ${topic} is not one it projects; subscribe it to ${STATE_TOPICS.join(", ")} only`,
        );
    }
    // After the data: a crash before this line only makes the host deliver the batch again. $max
    // keeps a late or repeated batch from moving the checkpoint back.
    await this.db
      .collection<Stored>(this.collections.checkpoints)
      .updateOne(
        { _id: `${topic}:${partition}` },
        { $max: { next: num(next) }, $setOnInsert: { topic, partition } },
        { upsert: true },
      );
  }

  private async applyGoals(pos: string, events: LoggedEvent[]): Promise<void> {
    const goals = new Fold<GoalDoc>(
      this.db,
      this.collections.goals,
      pos,
      freshGoal,
      GOAL_OWNED,
      goalDefaults,
      this.written,
    );
    const goalIds = [...new Set(idsOf(events, (v) => v.goalId))];
    await goals.load(goalIds);
    const inputsRead = new Map(goalIds.map((id) => [id, goalSummaryInputs(goals.peek(id)!)]));
    for (const { event, offset } of events) {
      if (!("goalId" in event.value) || typeof event.value.goalId !== "string") continue;
      const goal = goals.at(event.value.goalId, num(offset));
      if (!goal) continue;
      const at = occurredAt(event);
      goal.version = Math.max(goal.version, event.value.envelope.aggregate.version);
      switch (event.type) {
        case "GoalSubmitted": {
          const e = event.value;
          Object.assign(goal, {
            tenantId: e.envelope.tenantId,
            title: e.title,
            description: e.description,
            kind: e.kind,
            topology: e.topology,
            priority: e.priority,
            domainHints: e.domainHints,
            constraints: entries(e.constraints),
            deadline: e.deadline,
            budget: e.budget,
            submittedAt: at,
          });
          setGoalStatus(goal, "SUBMITTED");
          break;
        }
        case "GoalValidated":
          setGoalStatus(goal, "VALIDATED");
          break;
        case "GoalRejected":
          // A duplicate submission is refused under the id of the goal that exists: that goal stays as it is.
          if (event.value.code === "DUPLICATE_GOAL" && goal.status !== null) break;
          goal.tenantId ??= event.value.envelope.tenantId;
          // Also after GoalSubmitted and GoalValidated: a goal given up for want of a valid plan (PLANNING_FAILED).
          if (goal.status !== null && GOAL_RANK[goal.status] >= GOAL_RANK.REJECTED) break;
          setGoalStatus(goal, "REJECTED");
          goal.failure = { reason: event.value.reasons.join("; "), code: event.value.code, failedTaskIds: [] };
          goal.completedAt ??= at;
          break;
        case "GoalDecomposed": {
          const e = event.value;
          // As in processors/domain/kernel/state.ts: a decomposed goal is running (its tasks are dispatched at once).
          setGoalStatus(goal, "RUNNING");
          goal.planner = e.planner;
          const phase = e.phase === null ? undefined : goal.phases.find((p) => p.phase === e.phase);
          if (phase) phase.planner = e.planner;
          break;
        }
        case "PlanRequested":
        case "PlanProposed":
          applyPlanEvent(goal, event, at);
          break;
        case "PhaseTransitioned": {
          const e = event.value;
          if (goal.phases.some((p) => p.phase === e.toPhase)) break;
          const open = goal.phases.find((p) => p.endedAt === null);
          if (open) open.endedAt = at;
          goal.phases.push({ phase: e.toPhase, startedAt: at, endedAt: null, planner: null });
          goal.currentPhase = e.toPhase;
          break;
        }
        case "GoalCompleted": {
          const e = event.value;
          if (goal.status !== null && GOAL_RANK[goal.status] >= GOAL_RANK.COMPLETED) break;
          setGoalStatus(goal, "COMPLETED");
          goal.result = e.result;
          goal.outputs = entries(e.outputs);
          goal.completedAt = at;
          const open = goal.phases.find((p) => p.endedAt === null);
          if (open) open.endedAt = at;
          break;
        }
        case "GoalFailed": {
          const e = event.value;
          if (goal.status !== null && GOAL_RANK[goal.status] >= GOAL_RANK.FAILED) break;
          setGoalStatus(goal, "FAILED");
          goal.failure = { reason: e.reason, code: null, failedTaskIds: e.failedTaskIds };
          goal.completedAt = at;
          break;
        }
        case "GoalStopped": {
          const e = event.value;
          if (goal.status !== null && GOAL_RANK[goal.status] >= GOAL_RANK.STOPPED) break;
          setGoalStatus(goal, "STOPPED");
          goal.failure = { reason: e.reason, code: null, failedTaskIds: [] };
          goal.completedAt = at;
          break;
        }
        default:
          // GoalSnapshotTaken and PhaseTransitionRejected change no current state.
          break;
      }
    }
    await goals.write();
    // A summary reads the goal's plans' model calls, and a project's status and phases: it is
    // recomputed where the batch changed these, and for a new goal or one whose events came again
    // (its summary may not have been written). Any other goal's summary is that of the last batch
    // that summarised it, which read the same inputs.
    await this.summariseGoals(
      goalIds.filter((id) => goals.newOrRepeated(id) || goalSummaryInputs(goals.peek(id)!) !== inputsRead.get(id)),
    );
  }

  private async applyTasks(pos: string, events: LoggedEvent[]): Promise<void> {
    const tasks = new Fold<TaskDoc>(this.db, this.collections.tasks, pos, freshTask, TASK_OWNED, bare, this.written);
    const escalations = new Fold<EscalationDoc>(
      this.db,
      this.collections.escalations,
      pos,
      freshEscalation,
      ESCALATION_OWNED,
      bare,
      this.written,
    );
    const agents = new Effects(pos, agentDefaults, this.written);
    const goalIds = new Set<string>();
    const taskIds: string[] = [];
    const escalationIds: string[] = [];
    for (const { event } of events) {
      const v = event.value;
      if ("goalId" in v && typeof v.goalId === "string") goalIds.add(v.goalId);
      if (event.type === "TaskCreated") taskIds.push(taskKey(event.value.goalId, event.value.task.id));
      else if (event.type === "EscalationRaised" || event.type === "EscalationResolved")
        escalationIds.push(event.value.escalationId);
      else if ("taskId" in v && typeof v.taskId === "string" && "goalId" in v && typeof v.goalId === "string")
        taskIds.push(taskKey(v.goalId, v.taskId));
    }
    // All tasks of the batch's goals, one find per goal: the goal summaries below need them all,
    // and one find per task cost FerretDB a round trip each.
    await tasks.loadBy("goalId", goalIds, taskIds);
    await escalations.load(escalationIds);
    // An agent holds a task in currentTasks, and a task of a phase also in currentTaskPhases: the
    // two sets change together, so the phases of the tasks it holds are known without reading them.
    const holding = (task: TaskDoc, key: string): Document =>
      task.phase ? { currentTasks: key, currentTaskPhases: phaseTag(key, task.phase) } : { currentTasks: key };
    const hold = (agentId: string, offset: number, task: TaskDoc, key: string) =>
      agents.add(agentId, offset, { $addToSet: holding(task, key) });
    const release = (agentId: string, offset: number, task: TaskDoc, key: string) =>
      agents.add(agentId, offset, { $pull: holding(task, key) });

    for (const { event, offset: big } of events) {
      const offset = num(big);
      const at = occurredAt(event);
      switch (event.type) {
        case "EscalationRaised": {
          const e = event.value;
          const doc = escalations.at(e.escalationId, offset);
          if (!doc) break;
          Object.assign(doc, {
            goalId: e.goalId,
            taskId: e.taskId,
            kind: e.kind,
            severity: e.severity,
            from: { agentId: e.fromAgentId, tier: e.fromTier },
            to: { agentId: e.toAgentId, tier: e.toTier },
            reason: e.reason,
            reasonChain: e.reasonChain,
            previousEscalationId: e.previousEscalationId,
            raisedAt: at,
          });
          break;
        }
        case "EscalationResolved": {
          const e = event.value;
          const doc = escalations.at(e.escalationId, offset);
          if (!doc) break;
          Object.assign(doc, {
            goalId: e.goalId,
            taskId: e.taskId,
            status: "RESOLVED",
            outcome: e.outcome,
            decision: e.decision,
            reassignedTo: e.reassignedTo,
            resolvedAt: at,
          });
          break;
        }
        case "TaskCreated": {
          const e = event.value;
          const task = tasks.at(taskKey(e.goalId, e.task.id), offset);
          if (!task || task.attempt > 0) break; // created already
          Object.assign(task, {
            tenantId: e.envelope.tenantId,
            title: e.task.title,
            description: e.task.description,
            domain: e.task.domain,
            specialization: e.task.specialization,
            phase: e.task.phase,
            dependsOn: e.task.dependsOn,
            priority: e.priority,
            maxAttempts: e.maxAttempts,
            parentTaskId: e.parentTaskId,
            deadline: e.deadline,
            status: "PENDING",
            attempt: 1,
          });
          task.timings.createdAt = at;
          break;
        }
        case "TaskAssigned": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          if (!task || TASK_TERMINAL.has(task.status) || e.attempt < task.attempt) break;
          if (!HOLDING_TIERS.has(e.assigneeTier)) break;
          // A late copy of the assignment of an attempt that already ended must not hold its worker again.
          if (e.assigneeTier === "WORKER" && e.attempt === task.attempt && ATTEMPT_OVER.has(task.status)) break;
          if (e.attempt > task.attempt) {
            task.attempt = e.attempt;
            task.status = "ASSIGNED";
          } else if (TASK_RANK[task.status] < TASK_RANK.ASSIGNED) task.status = "ASSIGNED";
          task.assignees[e.assigneeTier] = e.assigneeId;
          if (!task.holders.includes(e.assigneeId)) task.holders.push(e.assigneeId);
          task.timings.assignedAt = at;
          hold(e.assigneeId, offset, task, key);
          break;
        }
        case "TaskAccepted":
        case "TaskStarted": {
          const e = event.value;
          const task = tasks.at(taskKey(e.goalId, e.taskId), offset);
          if (!task || ATTEMPT_OVER.has(task.status)) break;
          if (!advance(task, e.attempt, event.type === "TaskStarted" ? "RUNNING" : "ACCEPTED")) break;
          if (event.type === "TaskStarted") {
            task.timings.startedAt = at;
            task.executor = event.value.executor;
          } else task.timings.acceptedAt = at;
          break;
        }
        case "TaskProgressed": {
          const e = event.value;
          const task = tasks.at(taskKey(e.goalId, e.taskId), offset);
          if (task && e.attempt === task.attempt && !ATTEMPT_OVER.has(task.status))
            task.progress = Math.max(task.progress, e.percent);
          break;
        }
        case "TaskCompleted": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          if (task) applyAttemptUsage(task, event);
          if (!task || !advance(task, e.attempt, "COMPLETED")) break;
          task.result = e.result;
          task.outputs = entries(e.outputs);
          task.cost = sumCosts([task.cost, e.cost]);
          task.agentMs += e.durationMs;
          task.progress = 100;
          task.timings.completedAt = at;
          task.timings.durationMs = e.durationMs;
          task.assignees.WORKER ??= e.agentId;
          for (const holder of new Set([...Object.values(task.assignees), e.agentId]))
            release(holder, offset, task, key);
          agents.add(e.agentId, offset, {
            $inc: { "performance.tasksCompleted": 1, "performance.totalCompletionMs": e.durationMs },
          });
          break;
        }
        case "TaskFailed":
        case "TaskTimedOut": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          const failed = event.type === "TaskFailed" ? event.value : null;
          if (task && event.type === "TaskFailed") applyAttemptUsage(task, event);
          if (!task || !advance(task, e.attempt, failed ? "FAILED" : "TIMED_OUT")) break;
          task.failures += 1;
          if (!task.failedOn.includes(e.agentId)) task.failedOn.push(e.agentId);
          task.lastFailure = failed
            ? { agentId: e.agentId, reason: failed.reason, kind: failed.failureKind, retryable: failed.retryable }
            : {
                agentId: e.agentId,
                reason: `timed out after ${event.type === "TaskTimedOut" ? event.value.elapsedMs : 0} ms`,
                kind: "TIMEOUT",
                retryable: true,
              };
          const ran = failed ? (failed.durationMs ?? 0) : event.type === "TaskTimedOut" ? event.value.elapsedMs : 0;
          task.agentMs += ran;
          // The worker is done with this attempt; its superiors keep the task until it is retried or ends.
          for (const holder of new Set([task.assignees.WORKER, e.agentId]))
            if (holder) release(holder, offset, task, key);
          agents.add(e.agentId, offset, { $inc: { "performance.tasksFailed": 1 } });
          break;
        }
        case "TaskRetried": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          if (!task || TASK_TERMINAL.has(task.status) || e.attempt <= task.attempt) break;
          const worker = task.assignees.WORKER;
          if (worker) {
            release(worker, offset, task, key);
            task.holders = task.holders.filter((h) => h !== worker);
          }
          delete task.assignees.WORKER;
          task.attempt = e.attempt;
          task.status = "READY";
          task.progress = 0;
          break;
        }
        case "TaskReassigned": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          if (!task || TASK_TERMINAL.has(task.status) || e.attempt < task.attempt || !e.fromAgentId) break;
          const from = e.fromAgentId;
          release(from, offset, task, key);
          task.holders = task.holders.filter((h) => h !== from);
          for (const tier of Object.keys(task.assignees) as Tier[])
            if (task.assignees[tier] === from) delete task.assignees[tier];
          break;
        }
        case "TaskCancelled": {
          const e = event.value;
          const key = taskKey(e.goalId, e.taskId);
          const task = tasks.at(key, offset);
          if (!task || TASK_TERMINAL.has(task.status)) break;
          task.status = "CANCELLED";
          task.cancellation = { cause: e.cause, reason: e.reason };
          task.timings.completedAt = at;
          for (const holder of new Set([...Object.values(task.assignees), e.agentId]))
            if (holder) release(holder, offset, task, key);
          break;
        }
        default:
          // Reports, conflicts, context and queries are messages about tasks, not changes of state.
          break;
      }
    }
    // Derived performance is recomputed for every agent whose counters this batch's outcomes
    // change, applied now or before: a batch delivered again after the store failed between the
    // counters and the summary (seen with FerretDB stopped mid-batch) finds its events applied,
    // touches nothing, and would otherwise leave avgCompletionMs and successRate stale for ever.
    // So are the current phase and assigned projects of every agent the batch's events name or whose
    // tasks they change (the holders of those tasks as folded), applied now or before.
    const eventAgents = events.flatMap(({ event }) => {
      switch (event.type) {
        case "TaskCompleted":
        case "TaskFailed":
        case "TaskTimedOut":
          return [event.value.agentId];
        case "TaskCancelled":
          return event.value.agentId ? [event.value.agentId] : [];
        case "TaskAssigned":
          return [event.value.assigneeId];
        case "TaskReassigned":
          return event.value.fromAgentId ? [event.value.fromAgentId] : [];
        default:
          return [];
      }
    });
    const holders = taskIds.flatMap((id) => Object.values(tasks.peek(id)?.assignees ?? {}));
    const touchedAgents = [...new Set([...agents.touched(), ...eventAgents, ...holders])].sort();
    // Effects first: if the task documents were written first and a crash followed, the fold
    // would skip these events on redelivery and never decide the effects again.
    await agents.write(this.db, this.collections.agents);
    await escalations.write();
    await tasks.write();
    await this.summariseGoals([...goalIds], tasks.docs());
    await this.summariseAgents(touchedAgents);
  }

  /**
   * Recomputes the goals' task summary, consumption (with the resources their requests hold),
   * escalation counts, governors and mayors, and phase progress from the documents: the goal's own
   * and its tasks' and escalations'.
   */
  private async summariseGoals(goalIds: string[], known?: TaskDoc[]): Promise<void> {
    if (goalIds.length === 0) return;
    const goals = await findEach(
      this.db.collection<GoalDoc>(this.collections.goals),
      "_id",
      goalIds,
      {},
      { projection: Object.fromEntries(GOAL_SUMMARY_FIELDS.map((f) => [f, 1])) },
    );
    // `known`: every task document of these goals as just written (applyTasks loads them all).
    const tasks: TaskDoc[] =
      known ??
      (await findEach(
        this.db.collection<TaskDoc>(this.collections.tasks),
        "goalId",
        goalIds,
        {},
        {
          projection: {
            goalId: 1,
            taskId: 1,
            status: 1,
            phase: 1,
            cost: 1,
            agentMs: 1,
            attempt: 1,
            attemptUsage: 1,
            modelCalls: 1,
            assignees: 1,
          },
        },
      ));
    const escalations = await findEach(
      this.db.collection<EscalationDoc>(this.collections.escalations),
      "goalId",
      goalIds,
      {},
      { projection: { goalId: 1, status: 1 } },
    );
    const ops: Op[] = goalIds.map((goalId) => ({
      updateOne: {
        filter: { _id: goalId },
        update: {
          $set: goalSummary(
            goals.find((g) => g._id === goalId),
            tasks.filter((t) => t.goalId === goalId),
            escalations.filter((e) => e.goalId === goalId),
          ),
          $setOnInsert: { goalId, _pos: {} },
        },
        upsert: true,
      },
    }));
    await bulkWrite(this.db.collection<Stored>(this.collections.goals), ops, false);
  }

  /**
   * Derives average completion time and success rate from the counters, and the current phase and
   * assigned projects from the tasks held. Written only if the counters are still those read: a
   * writer that changed them since recomputes after its own change.
   */
  private async summariseAgents(agentIds: string[]): Promise<void> {
    if (agentIds.length === 0) return;
    const docs = await findEach(
      this.db.collection<AgentDoc>(this.collections.agents),
      "_id",
      agentIds,
      {},
      { projection: { performance: 1, currentTasks: 1, currentTaskPhases: 1 } },
    );
    const ops: Op[] = docs.map(({ _id, performance: p, currentTasks, currentTaskPhases }) => {
      const ended = p.tasksCompleted + p.tasksFailed;
      return {
        updateOne: {
          filter: {
            _id,
            "performance.tasksCompleted": p.tasksCompleted,
            "performance.tasksFailed": p.tasksFailed,
            "performance.totalCompletionMs": p.totalCompletionMs,
          },
          update: {
            $set: {
              "performance.avgCompletionMs": p.tasksCompleted === 0 ? null : p.totalCompletionMs / p.tasksCompleted,
              "performance.successRate": ended === 0 ? null : p.tasksCompleted / ended,
              currentPhase: latestPhase(currentTaskPhases ?? []),
              assignedProjects: goalsOf(currentTasks ?? []),
            },
          },
        },
      };
    });
    await bulkWrite(this.db.collection<Stored>(this.collections.agents), ops, false);
  }

  /**
   * Resource requests and their answers onto the goal (allocations), with the violations and policy
   * decisions about it; what each agent was allocated onto the agent. Allocations are counted for
   * the agent when the goal's fold sees them granted (once per request, whatever copies the log has).
   */
  private async applyGovernance(pos: string, events: LoggedEvent[]): Promise<void> {
    const goals = new Fold<GoalDoc>(
      this.db,
      this.collections.goals,
      pos,
      freshGoal,
      GOVERNANCE_OWNED,
      goalDefaults,
      this.written,
    );
    const agents = new Effects(pos, agentDefaults, this.written);
    const goalIds = [...new Set(idsOf(events, (v) => v.goalId))];
    await goals.load(goalIds);
    const requesters = new Set<string>();
    for (const { event, offset: big } of events) {
      const offset = num(big);
      const at = occurredAt(event);
      switch (event.type) {
        case "ResourceRequested": {
          const e = event.value;
          const goal = e.goalId === null ? undefined : goals.at(e.goalId, offset);
          if (!goal) break;
          const allocations = (goal.allocations ??= []);
          if (allocations.some((a) => a.requestId === e.requestId)) break;
          allocations.push({
            requestId: e.requestId,
            allocationId: null,
            taskId: e.taskId,
            requesterId: e.requesterId,
            kind: e.kind,
            amount: e.amount,
            granted: null,
            unit: e.unit,
            status: "REQUESTED",
            reasons: [],
            requestedAt: at,
            answeredAt: null,
            expiresAt: null,
          });
          break;
        }
        case "ResourceAllocated":
        case "ResourceDenied": {
          const e = event.value;
          const allocated = event.type === "ResourceAllocated" ? event.value : null;
          requesters.add(e.requesterId);
          if (e.goalId !== null) {
            const goal = goals.at(e.goalId, offset);
            // Applied before: what it meant for the agent was decided then.
            if (!goal) break;
            const allocations = (goal.allocations ??= []);
            let a = allocations.find((x) => x.requestId === e.requestId);
            if (!a) {
              // An answer whose request this model never saw: the answer tells what was asked.
              a = {
                requestId: e.requestId,
                allocationId: null,
                taskId: e.taskId,
                requesterId: e.requesterId,
                kind: e.kind,
                amount: e.requestedAmount,
                granted: null,
                unit: e.unit,
                status: "REQUESTED",
                reasons: [],
                requestedAt: null,
                answeredAt: null,
                expiresAt: null,
              };
              allocations.push(a);
            }
            // The first answer to a request counts.
            if (a.status !== "REQUESTED") break;
            a.answeredAt = at;
            if (allocated) {
              Object.assign(a, {
                status: "ALLOCATED",
                allocationId: allocated.allocationId,
                granted: allocated.grantedAmount,
                expiresAt: allocated.expiresAt,
              });
            } else {
              a.status = "DENIED";
              a.reasons = event.type === "ResourceDenied" ? event.value.reasons : [];
            }
          }
          // Granted now (a repeat or a late copy of an answer broke off above): counted for the agent.
          if (allocated)
            agents.add(allocated.requesterId, offset, {
              $inc: {
                [`resourceAllocation.${allocated.kind}.allocations`]: 1,
                [`resourceAllocation.${allocated.kind}.grantedTenThousandths`]: Number(
                  toUnits(allocated.grantedAmount),
                ),
              },
              $set: { [`resourceAllocation.${allocated.kind}.unit`]: allocated.unit },
            });
          break;
        }
        case "PolicyEvaluated": {
          const e = event.value;
          const goal = e.goalId === null ? undefined : goals.at(e.goalId, offset);
          if (!goal) break;
          const decisions = { ...(goal.policyDecisions ?? {}) };
          decisions[e.decision] = (decisions[e.decision] ?? 0) + 1;
          goal.policyDecisions = decisions;
          break;
        }
        case "ConstitutionalViolationDetected": {
          const e = event.value;
          const goal = e.goalId === null ? undefined : goals.at(e.goalId, offset);
          if (!goal) break;
          const violations = (goal.violations ??= []);
          if (violations.some((v) => v.violationId === e.violationId)) break;
          violations.push({
            violationId: e.violationId,
            taskId: e.taskId,
            agentId: e.agentId,
            policyId: e.policyId,
            policyVersion: e.policyVersion,
            principle: e.principle,
            description: e.description,
            severity: e.severity,
            enforcement: e.enforcement,
            at,
          });
          break;
        }
        default:
          // PerformanceAlert: in the analytics model (system_events).
          break;
      }
    }
    // Effects first, as in applyTasks: on redelivery the fold decides them again and their guards drop repeats.
    await agents.write(this.db, this.collections.agents);
    await goals.write();
    await this.summariseGoals(goalIds);
    await this.summariseAllocations([...requesters].sort());
  }

  /** The granted totals of the agents' allocations as decimal strings, from their exact counters. */
  private async summariseAllocations(agentIds: string[]): Promise<void> {
    if (agentIds.length === 0) return;
    const docs = await findEach(
      this.db.collection<AgentDoc>(this.collections.agents),
      "_id",
      agentIds,
      {},
      { projection: { resourceAllocation: 1 } },
    );
    const ops: Op[] = [];
    for (const { _id, resourceAllocation } of docs) {
      const set: Document = {};
      for (const [kind, totals] of Object.entries(resourceAllocation ?? {}))
        set[`resourceAllocation.${kind}.granted`] = formatCost(BigInt(totals.grantedTenThousandths ?? 0));
      if (Object.keys(set).length > 0) ops.push({ updateOne: { filter: { _id }, update: { $set: set } } });
    }
    await bulkWrite(this.db.collection<Stored>(this.collections.agents), ops, false);
  }

  private async applyAgents(pos: string, events: LoggedEvent[]): Promise<void> {
    const agents = new Fold<AgentDoc>(
      this.db,
      this.collections.agents,
      pos,
      freshAgent,
      AGENT_OWNED,
      agentDefaults,
      this.written,
    );
    // Subordinate lists are written from the subordinate's partition onto the superior's document,
    // under a position of their own so they never interfere with the superior's own fold.
    const superiors = new Effects(`${pos}_sub`, agentDefaults, this.written);
    await agents.load(idsOf(events, (v) => v.agentId));
    for (const { event, offset: big } of events) {
      const offset = num(big);
      const at = occurredAt(event);
      switch (event.type) {
        case "AgentRegistered": {
          const e = event.value;
          const agent = agents.at(e.agentId, offset);
          if (!agent) break;
          const previous = agent.superiorId;
          Object.assign(agent, {
            tenantId: ownerOf(e.envelope.tenantId),
            name: e.name,
            tier: e.tier,
            topology: e.topology,
            domain: e.domain,
            specialization: e.specialization,
            superiorId: e.superiorId,
            capacity: e.capacity,
            executor: e.executor,
            labels: entries(e.labels),
            heartbeatIntervalMs: e.heartbeatIntervalMs,
            registeredAt: at,
            termination: null,
          });
          if (agent.status === null || agent.status === "TERMINATED") agent.status = "IDLE";
          if (previous && previous !== e.superiorId)
            superiors.add(previous, offset, { $pull: { subordinates: e.agentId } });
          if (e.superiorId) superiors.add(e.superiorId, offset, { $addToSet: { subordinates: e.agentId } });
          break;
        }
        case "AgentHeartbeat": {
          const e = event.value;
          const agent = agents.at(e.agentId, offset);
          if (!agent) break;
          if (agent.lastHeartbeat === null || e.at >= agent.lastHeartbeat) {
            agent.lastHeartbeat = e.at;
            agent.heartbeatSequence = e.sequence;
            agent.load = e.load;
            agent.capacity = e.capacity;
            // Failed and terminated agents change state only through AgentRecovered or AgentRegistered.
            if (agent.status !== "FAILED" && agent.status !== "TERMINATED") agent.status = e.status;
          }
          break;
        }
        case "AgentFailed": {
          const e = event.value;
          const agent = agents.at(e.agentId, offset);
          if (!agent || agent.status === "TERMINATED") break;
          agent.status = "FAILED";
          agent.failure = { reason: e.reason, at };
          break;
        }
        case "AgentRecovered": {
          const agent = agents.at(event.value.agentId, offset);
          if (!agent || agent.status !== "FAILED") break;
          agent.status = "IDLE";
          break;
        }
        case "AgentTerminated": {
          const e = event.value;
          const agent = agents.at(e.agentId, offset);
          if (!agent) break;
          agent.status = "TERMINATED";
          agent.termination = { cause: e.cause, reason: e.reason, at };
          if (agent.superiorId) superiors.add(agent.superiorId, offset, { $pull: { subordinates: e.agentId } });
          break;
        }
        default:
          // AgentsScaled is followed by the AgentRegistered and AgentTerminated of the agents it changed.
          break;
      }
    }
    await superiors.write(this.db, this.collections.agents);
    await agents.write();
  }

  private async applyPolicies(pos: string, events: LoggedEvent[]): Promise<void> {
    const policies = new Fold<PolicyDoc>(
      this.db,
      this.collections.policies,
      pos,
      freshPolicy,
      POLICY_OWNED,
      bare,
      this.written,
    );
    await policies.load(idsOf(events, (v) => v.policyId));
    for (const { event, offset } of events) {
      const at = occurredAt(event);
      switch (event.type) {
        case "PolicyDefined":
        case "PolicyAmended": {
          const e = event.value;
          const policy = policies.at(e.policyId, num(offset));
          if (!policy || policy.versions.some((v) => v.version === e.version)) break;
          policy.category = e.category;
          if (event.type === "PolicyDefined") {
            policy.name = event.value.name;
            policy.tenantId = ownerOf(event.value.envelope.tenantId);
          }
          policy.versions.push({
            version: e.version,
            description: e.description,
            rules: e.rules,
            appliesToTiers: e.appliesToTiers,
            domains: e.domains,
            precedence: e.precedence,
            effectiveFrom: e.effectiveFrom,
            rationale: event.type === "PolicyAmended" ? event.value.rationale : null,
            at,
          });
          policy.versions.sort((a, b) => a.version - b.version);
          policy.currentVersion = Math.max(policy.currentVersion, e.version);
          break;
        }
        case "PolicyRetired": {
          const e = event.value;
          const policy = policies.at(e.policyId, num(offset));
          if (!policy) break;
          policy.status = "RETIRED";
          policy.retired = { reason: e.reason, effectiveFrom: e.effectiveFrom, replacedBy: e.replacedBy };
          break;
        }
        default:
          break;
      }
    }
    await policies.write();
  }
}
