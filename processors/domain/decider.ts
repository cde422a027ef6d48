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
import type { PolicyBook } from "./policies.js";
import type { HierarchyState } from "./state.js";

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
