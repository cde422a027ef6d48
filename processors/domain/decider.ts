/**
 * The shape every tier shares: a pure decision over the hierarchy state. A host folds events into
 * the state with `evolve` (state.ts), asks the tier's `decide` what follows from each input, and
 * writes the answer, together with its consumer offsets, in one Kafka transaction.
 */
import type { PolityEvent } from "../../schemas/reader.js";
import type {
  Actor,
  AggregateType,
  MessageTypeName,
  ModelUsage,
  Payload,
  TaskSpec,
  Topology,
} from "../../schemas/generated/types.js";
import type { AgentDirectory, Role } from "./directory.js";
import type { RetryLimits } from "./limits.js";
import type { TimeLimits } from "./time-limits.js";
import type { Planner, PlanningConfig } from "./planner.js";
import type { PolicyBook } from "./policies/book.js";
import { evolve, initialState, type GoalState, type HierarchyState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";

/** A message a decider wants written. The host fills the envelope (ids, time, tenant, causation). */
export type Decision = {
  [T in MessageTypeName]: {
    type: T;
    payload: Payload<T>;
    actor: Actor;
    aggregate: { type: AggregateType; id: string; version: number };
  };
}[MessageTypeName];

/** The outcome of running a task, handed back to the worker decider by its host. */
export interface ExecutionFinished {
  type: "ExecutionFinished";
  goalId: string;
  taskId: string;
  agentId: string;
  attempt: number;
  outcome:
    | {
        ok: true;
        result: string;
        outputs: Record<string, string>;
        durationMs: number;
        cost: string;
        exitCode: number | null;
        /** The model calls of a model-backed attempt. */
        usage?: ModelUsage | null;
      }
    | {
        ok: false;
        reason: string;
        kind: "EXECUTION_ERROR" | "NONZERO_EXIT" | "INVALID_OUTPUT";
        retryable: boolean;
        durationMs: number;
        exitCode: number | null;
        output: string | null;
        usage?: ModelUsage | null;
      };
}

/**
 * A planner's answer to a PlanRequested, handed back to the president by its host (the model call
 * ran outside the decider, as an execution does). The president records it as PlanProposed.
 */
export interface PlanningFinished {
  type: "PlanningFinished";
  goalId: string;
  requestId: string;
  /** The planner with its version, e.g. "model/v1". */
  planner: string;
  tasks: TaskSpec[];
  usage: ModelUsage | null;
  /** Why no plan came back; null when one did. */
  error: string | null;
}

/** Progress of a running attempt, handed to the worker decider by its host (TaskProgressed). */
export interface ExecutionProgressed {
  type: "ExecutionProgressed";
  goalId: string;
  taskId: string;
  agentId: string;
  attempt: number;
  percent: number;
  message: string | null;
  metrics: Record<string, number>;
}

/** What a side effect run outside a decider (an execution, a planning) hands back to it: no event, so never folded. */
export type SideEffectOutcome = ExecutionFinished | ExecutionProgressed | PlanningFinished;

/**
 * The host's clock: the time now, handed to the deciders of its partitions every few hundred
 * milliseconds (tier-host.ts `clock`), so a decider can see that a time limit passed without
 * reading a clock itself. Never written to the log: what it leads to (TaskTimedOut, a deadline's
 * escalation or GoalFailed) is, so a replay never needs the tick, and a tick decided again after a
 * restart finds those facts in the state and adds nothing.
 */
export interface ClockTicked {
  type: "ClockTicked";
  now: Date;
}

export type TierInput = PolityEvent | SideEffectOutcome | ClockTicked;

/** Whether an input is an event read from the log (folded into the state) rather than a side effect's outcome or a tick. */
export function isEvent(input: TierInput): input is PolityEvent {
  return (
    input.type !== "ExecutionFinished" &&
    input.type !== "ExecutionProgressed" &&
    input.type !== "PlanningFinished" &&
    input.type !== "ClockTicked"
  );
}

export interface DecisionContext {
  /** The time of the decision, passed in so deciders stay deterministic. */
  now: Date;
  directory: AgentDirectory;
  planner: Planner;
  /** The agents this host speaks for; a decider only acts for those. */
  hosts: (agentId: string) => boolean;
  /** How a topology's goals are planned (topology `planner`); the template planner when absent (planner.ts). */
  planning?: (topology: Topology) => PlanningConfig;
  /** Retry and escalation limits of a topology, from its configuration; the defaults when absent (limits.ts). */
  retryLimits?: (topology: Topology) => RetryLimits;
  /** Task time limits and goal deadlines of a topology, from its configuration; none and the defaults when absent (time-limits.ts). */
  timeLimits?: (topology: Topology) => TimeLimits;
  /**
   * Every policy version (a global view of polity.policies.events, kept by the host's policy
   * feed). Consult `policies.at(time)` with the time of what is decided on, never the latest.
   */
  policies: PolicyBook;
}

export interface TierDecider {
  role: Role;
  /** Message types that change this tier's state or call for a decision; hosts skip the rest unread. */
  reads: ReadonlySet<MessageTypeName>;
  decide(input: TierInput, state: HierarchyState, context: DecisionContext): Decision[];
}

/** Builds a decision with its type checked against the generated payload type. */
export function decision<T extends MessageTypeName>(
  type: T,
  payload: Payload<T>,
  actor: Actor,
  aggregate: { type: AggregateType; id: string; version?: number },
): Decision {
  return { type, payload, actor, aggregate: { version: -1, ...aggregate } } as Decision;
}

/**
 * One goal's decisions folded as they are made: a decider emits each decision into a draft, which
 * folds it with `evolve` into a scratch copy of the state exactly as the host will fold it once
 * `decide` returns (the tier host's `decide`), so what the decider reads next (the goal's version,
 * phase, status, its tasks) is what the log will say at that point, never a state built by hand.
 *
 *   const draft = new Draft(state, goalId, { now: ctx.now, cause: cmd.envelope });
 *   draft.emit(decision("GoalSubmitted", {...}, actor, draft.goalRef()));
 *   draft.goal!.version; // 1
 *   return draft.decisions;
 *
 * The scratch holds the one goal and its tasks, copied one level deep (their sets, maps and
 * arrays), so the state given to `decide` is never changed; a task is copied only when a decision
 * names it (copy on write), and nothing is copied before the first decision. (An allocation is
 * held by both its goal and its task and is not copied: resource answers are the resources role's
 * to decide, not drafted.) Its state-wide
 * indexes (agents' load, refusals, rejected commands, policies) start empty: read those from the
 * state given to `decide`. Ended goals are not settled in the scratch (keepEnded is unbounded): a
 * host folds a decide's decisions only after all of them were made, so none of them sees a settle.
 */
export class Draft {
  readonly decisions: Decision[] = [];
  private scratch: HierarchyState | null = null;
  /** Keys of the goal's tasks the scratch still shares with the given state (copied before a decision changes them). */
  private readonly shared = new Set<string>();
  private drafted = 0;

  constructor(
    private readonly base: HierarchyState,
    readonly goalId: string,
    /** The decision time (the drafted events' occurredAt) and the input decided on (their causation and tenant). */
    private readonly at: { now: Date; cause?: { eventId: string; tenantId: string } | null },
  ) {}

  /** The state with everything emitted so far folded in (for this goal and its tasks only). */
  get state(): HierarchyState {
    return (this.scratch ??= this.copy());
  }

  /** The goal as the decisions so far leave it; undefined before it exists (until its GoalSubmitted). */
  get goal(): GoalState | undefined {
    return this.scratch ? this.scratch.goals.get(this.goalId) : this.base.goals.get(this.goalId);
  }

  /** The aggregate of the goal's next event on polity.goals.events: one version past the draft's. */
  goalRef(): { type: "GOAL"; id: string; version: number } {
    return { type: "GOAL", id: this.goalId, version: (this.goal?.version ?? 0) + 1 };
  }

  /** Records decisions, in order, and folds each into the scratch as the host will. */
  emit(...decisions: Decision[]): void {
    for (const d of decisions) {
      const payload = d.payload as { goalId?: string | null; taskId?: string | null };
      if (payload.goalId && payload.goalId !== this.goalId)
        throw new Error(`a draft of goal ${this.goalId} was given a ${d.type} of goal ${payload.goalId}`);
      const state = this.state;
      const key = payload.taskId ? taskKey(this.goalId, payload.taskId) : null;
      if (key && this.shared.delete(key)) state.tasks.set(key, copied(state.tasks.get(key)!));
      const goal = state.goals.get(this.goalId);
      const envelope = {
        eventId: `draft-${this.goalId}-${++this.drafted}`,
        type: d.type,
        occurredAt: this.at.now,
        tenantId: goal?.tenantId ?? this.at.cause?.tenantId ?? "system",
        correlationId: this.goalId,
        causationId: this.at.cause?.eventId ?? null,
        actor: d.actor,
        aggregate: d.aggregate,
      };
      this.scratch = evolve(state, { type: d.type, value: { envelope, ...d.payload } } as PolityEvent);
      this.decisions.push(d);
    }
  }

  private copy(): HierarchyState {
    const scratch = initialState({ keepEnded: Number.POSITIVE_INFINITY });
    const goal = this.base.goals.get(this.goalId);
    if (!goal) return scratch;
    scratch.goals.set(this.goalId, copied(goal));
    for (const id of goal.taskIds) {
      const key = taskKey(this.goalId, id);
      const task = this.base.tasks.get(key);
      if (!task) continue;
      scratch.tasks.set(key, task);
      this.shared.add(key);
    }
    return scratch;
  }
}

/** A copy of a goal or task one level deep: what `evolve` changes in place (sets, maps, arrays) is its own. */
function copied<T extends object>(o: T): T {
  const out = { ...o } as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) {
    if (v instanceof Set) out[k] = new Set(v);
    else if (v instanceof Map) out[k] = new Map(v);
    else if (Array.isArray(v)) out[k] = [...v];
  }
  return out as T;
}
