/**
 * Given/when/then specifications for the pure tier deciders, after Emmett's DeciderSpecification:
 *
 *   spec(president).given([...events]).when(input).then([{ type: "GoalSubmitted", goalId: "g1" }, ...]);
 *
 * `given` folds events (or earlier decisions) with `evolve` into `initialState()`. `when` does what a
 * tier host does with an input: folds it (unless it is an ExecutionFinished, which is no event),
 * then asks the decider. `then` compares the decisions' types, in order, and the payload fields
 * each expectation names. No broker, no codec: everything here is in memory.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Envelope, MessageTypeName, Payload, Phase, TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { topicFor } from "../../schemas/catalog.js";
import {
  isEvent,
  type Decision,
  type DecisionContext,
  type ExecutionFinished,
  type TierDecider,
  type TierInput,
} from "../../processors/domain/decider.js";
import { AgentDirectory } from "../../processors/domain/directory.js";
import { templatePlanner } from "../../processors/domain/planner.js";
import { PolicyBook, scopedContext } from "../../processors/domain/policies/book.js";
import { evolve, initialState, type HierarchyState } from "../../processors/domain/kernel/state.js";
import { agentsOf, registrationOf, type TopologyConfig } from "../../processors/topology.js";

// ---- the hierarchy under test ----------------------------------------------------------------

/** A fixed decision time, so durations in decisions are predictable. */
export const NOW = new Date("2030-01-01T12:00:00.000Z");
export const TENANT = "tenant-test";

/**
 * Both topologies, three domains. aamas backend has two mayors: mayor-1 gets api-1 and database-1,
 * mayor-2 gets api-2 (workers are spread round-robin), so only mayor-1 can take database work.
 */
export const TEST_TOPOLOGY: TopologyConfig = {
  simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
  topologies: {
    aamas: {
      domains: {
        frontend: { mayors: 1, workers: { react: { count: 2, capacity: 2 }, css: { count: 1, capacity: 1 } } },
        backend: { mayors: 2, workers: { api: { count: 2, capacity: 2 }, database: { count: 1, capacity: 1 } } },
        testing: {
          mayors: 1,
          workers: { "unit-test": { count: 1, capacity: 2 }, "e2e-test": { count: 1, capacity: 1 } },
        },
      },
    },
    dgm: {
      domains: {
        frontend: { workers: { react: { count: 2, capacity: 2 }, css: { count: 1, capacity: 1 } } },
        backend: { workers: { api: { count: 2, capacity: 2 }, database: { count: 1, capacity: 1 } } },
        testing: { workers: { "unit-test": { count: 1, capacity: 2 }, "e2e-test": { count: 1, capacity: 1 } } },
      },
    },
  },
};

/** The directory every host would derive from the AgentRegistered facts of `config`. */
export function directoryOf(config: TopologyConfig = TEST_TOPOLOGY): AgentDirectory {
  const directory = new AgentDirectory();
  for (const agent of agentsOf(config).map(registrationOf))
    directory.apply(
      // As the processes announce configured agents: under the system tenant, platform-wide.
      ev("AgentRegistered", agent, {
        tenantId: "system",
        actor: { id: "test", tier: "SYSTEM" },
        aggregate: { type: "AGENT", id: agent.agentId, version: 1 },
      }),
    );
  return directory;
}

export const DIRECTORY = directoryOf();

export function context(overrides: Partial<DecisionContext> = {}): DecisionContext {
  return {
    now: NOW,
    directory: DIRECTORY,
    planner: templatePlanner,
    hosts: () => true,
    policies: new PolicyBook(),
    ...overrides,
  };
}

// ---- event builders --------------------------------------------------------------------------

// Every message on the tasks topic is about a task (its aggregate), when it names one.
const TASK_TYPES: ReadonlySet<string> = new Set(topicFor("TaskCreated").messages);

function aggregateFor(type: string, payload: Record<string, unknown>): Envelope["aggregate"] {
  if (type.startsWith("Agent")) return { type: "AGENT", id: String(payload.agentId), version: -1 };
  const taskId = (payload.taskId as string | null | undefined) ?? (payload.task as TaskSpec | undefined)?.id;
  if (TASK_TYPES.has(type) && taskId) return { type: "TASK", id: taskId, version: -1 };
  return { type: "GOAL", id: String(payload.goalId ?? "unknown"), version: -1 };
}

/** An event with a complete envelope; the envelope's fields may be overridden. */
export function ev<T extends MessageTypeName>(
  type: T,
  payload: Payload<T>,
  envelope: Partial<Envelope> = {},
): PolityEvent {
  const fields = payload as Record<string, unknown>;
  const goalId = typeof fields.goalId === "string" ? fields.goalId : undefined;
  const full: Envelope = {
    eventId: randomUUID(),
    type,
    occurredAt: NOW,
    tenantId: TENANT,
    correlationId: goalId ?? "flow",
    causationId: null,
    actor: { id: "test-user", tier: "USER" },
    aggregate: aggregateFor(type, fields),
    ...envelope,
  };
  return { type, value: { envelope: full, ...payload } } as unknown as PolityEvent;
}

/** A decision as the event its host would write (the host fills the envelope the same way). */
export function asEvent(d: Decision, envelope: Partial<Envelope> = {}): PolityEvent {
  return ev(d.type, d.payload, { actor: d.actor, aggregate: d.aggregate, ...envelope });
}

export function task(
  id: string,
  domain: string,
  specialization: string | null,
  dependsOn: string[] = [],
  extra: Partial<TaskSpec> = {},
): TaskSpec {
  return {
    id,
    title: `Task ${id}`,
    description: null,
    domain,
    specialization,
    phase: null,
    dependsOn,
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
    ...extra,
  };
}

export function submitGoal(
  overrides: Partial<Payload<"SubmitGoal">> = {},
  envelope: Partial<Envelope> = {},
): PolityEvent {
  return ev(
    "SubmitGoal",
    {
      goalId: "g1",
      kind: "GOAL",
      title: "Build the shop",
      description: "An online shop",
      priority: 5,
      constraints: {},
      deadline: null,
      domainHints: [],
      topology: "aamas",
      tasks: null,
      budget: null,
      ...overrides,
    },
    envelope,
  );
}

export function requestPhase(goalId: string, fromPhase: Phase, toPhase: Phase): PolityEvent {
  return ev("RequestPhaseTransition", { goalId, fromPhase, toPhase, justification: null });
}

export function assigned(
  goalId: string,
  spec: TaskSpec,
  assigneeId: string,
  overrides: Partial<Payload<"TaskAssigned">> = {},
): PolityEvent {
  const agent = DIRECTORY.get(assigneeId);
  if (!agent) throw new Error(`no agent ${assigneeId} in the test directory`);
  return ev("TaskAssigned", {
    goalId,
    taskId: spec.id,
    assigneeId,
    assigneeTier: agent.tier,
    assignedBy: agent.superiorId ?? "test",
    attempt: 1,
    task: spec,
    priority: spec.priority ?? 5,
    timeoutMs: null,
    ...overrides,
  });
}

export function created(goalId: string, spec: TaskSpec, overrides: Partial<Payload<"TaskCreated">> = {}): PolityEvent {
  return ev("TaskCreated", {
    goalId,
    task: spec,
    priority: spec.priority ?? 5,
    maxAttempts: 3,
    parentTaskId: null,
    deadline: null,
    ...overrides,
  });
}

export function started(goalId: string, taskId: string, agentId: string, attempt = 1): PolityEvent {
  return ev("TaskStarted", { goalId, taskId, agentId, attempt, executor: "simulated" });
}

export function completed(
  goalId: string,
  taskId: string,
  agentId: string,
  overrides: Partial<Payload<"TaskCompleted">> = {},
): PolityEvent {
  return ev("TaskCompleted", {
    goalId,
    taskId,
    agentId,
    attempt: 1,
    result: `done ${taskId}`,
    durationMs: 10,
    outputs: {},
    cost: "0.0000",
    exitCode: null,
    usage: null,
    ...overrides,
  });
}

export function failed(
  goalId: string,
  taskId: string,
  agentId: string,
  overrides: Partial<Payload<"TaskFailed">> = {},
): PolityEvent {
  return ev("TaskFailed", {
    goalId,
    taskId,
    agentId,
    attempt: 1,
    reason: "boom",
    failureKind: "EXECUTION_ERROR",
    retryable: true,
    exitCode: null,
    output: null,
    durationMs: 5,
    usage: null,
    ...overrides,
  });
}

export function retried(goalId: string, taskId: string, attempt: number, excludeAgentIds: string[] = []): PolityEvent {
  return ev("TaskRetried", {
    goalId,
    taskId,
    attempt,
    maxAttempts: 3,
    reason: "boom",
    backoffMs: 0,
    excludeAgentIds,
  });
}

export function executionFinished(
  goalId: string,
  taskId: string,
  agentId: string,
  outcome: ExecutionFinished["outcome"],
  attempt = 1,
): ExecutionFinished {
  return { type: "ExecutionFinished", goalId, taskId, agentId, attempt, outcome };
}

export function escalation(
  overrides: Partial<Payload<"EscalationRaised">> & Pick<Payload<"EscalationRaised">, "goalId" | "toAgentId">,
): PolityEvent {
  return ev("EscalationRaised", {
    escalationId: "esc-1",
    taskId: null,
    kind: "RETRIES_EXHAUSTED",
    severity: "CRITICAL",
    fromAgentId: "someone",
    fromTier: "MAYOR",
    toTier: "GOVERNOR",
    reason: "out of attempts",
    reasonChain: [],
    previousEscalationId: null,
    ...overrides,
  });
}

// ---- the specification -----------------------------------------------------------------------

/** What a decision is expected to be: its type and any of its payload fields. */
export type Expected = { [T in MessageTypeName]: { type: T } & Partial<Payload<T>> }[MessageTypeName];

export type Given = PolityEvent | Decision;

function isDecision(g: Given): g is Decision {
  return "payload" in g;
}

/** Folds events (and decisions, as the events they become) into a fresh state. */
export function stateOf(given: readonly Given[]): HierarchyState {
  let state = initialState();
  for (const g of given) state = evolve(state, isDecision(g) ? asEvent(g) : g);
  return state;
}

/** The decision projected onto the fields `expected` names, so a mismatch shows as a readable diff. */
function project(d: Decision, expected: Expected): Record<string, unknown> {
  const out: Record<string, unknown> = { type: d.type };
  const payload = d.payload as Record<string, unknown>;
  for (const key of Object.keys(expected)) if (key !== "type") out[key] = payload[key];
  return out;
}

export class Outcome {
  constructor(
    readonly decisions: Decision[],
    /** The state after the input was folded, before the decisions (what the decider saw). */
    readonly state: HierarchyState,
  ) {}

  /** Exactly these decisions, in this order; each compared on its type and the fields it names. */
  then(expected: Expected[]): Decision[] {
    const actual = this.decisions.map((d, i) => (expected[i] ? project(d, expected[i]) : { type: d.type }));
    assert.deepStrictEqual(actual, expected);
    return this.decisions;
  }

  thenNothing(): void {
    assert.deepStrictEqual(
      this.decisions.map((d) => d.type),
      [],
    );
  }

  /** The decisions' types, in order. */
  thenTypes(types: MessageTypeName[]): Decision[] {
    assert.deepStrictEqual(
      this.decisions.map((d) => d.type),
      types,
    );
    return this.decisions;
  }

  /** A check of its own; it may assert or return false. */
  thenMatches(check: (decisions: Decision[]) => boolean | void, message = "decisions do not match"): Decision[] {
    const ok = check(this.decisions);
    assert.notEqual(ok, false, `${message}: ${JSON.stringify(this.decisions.map((d) => d.type))}`);
    return this.decisions;
  }
}

export interface Specification {
  given(events: readonly Given[]): { when(input: TierInput): Outcome };
  when(input: TierInput): Outcome;
}

export function spec(decider: TierDecider, ctx: DecisionContext = context()): Specification {
  const run = (given: readonly Given[], input: TierInput): Outcome => {
    let state = stateOf(given);
    // A host folds each input before it decides on it; an ExecutionFinished is no event.
    if (isEvent(input)) state = evolve(state, input);
    // Policies scoped to the input's tenant, as a host does (policies/book.ts scopedContext).
    return new Outcome(decider.decide(input, state, scopedContext(ctx, input, state)), state);
  };
  return {
    given: (events) => ({ when: (input) => run(events, input) }),
    when: (input) => run([], input),
  };
}

/** Decisions of one type, with their payloads typed. */
export function ofType<T extends MessageTypeName>(decisions: readonly Decision[], type: T): Payload<T>[] {
  return decisions.filter((d) => d.type === type).map((d) => d.payload as Payload<T>);
}
