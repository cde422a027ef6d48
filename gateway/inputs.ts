/**
 * Validation of what clients send, shared by GraphQL and REST so both refuse the same things with
 * the same words. The rules are the request schemas of gateway/contract (zod), which also give the
 * OpenAPI document its request bodies; each parser here runs one and turns its output into the
 * typed command payload. A refusal is INVALID_INPUT naming the field path as the client sent it
 * ("priority", "tasks[2].depends_on") at the first problem. Nothing is written before a parser has
 * accepted the whole input.
 */
import type { AttemptRef, GoalRequest } from "../producers/commands.js";
import type { AgentStatus, Payload, Phase, TaskSpec, Tier } from "../schemas/generated/types.js";
import { invalid } from "./errors.js";
import { parseWith } from "./contract/fields.js";
import {
  EmergencyStopInput,
  GoalInput,
  PhaseTransitionInput,
  PolicyAmendmentInput,
  PolicyInput,
  RegisterAgentInput,
  ScaleAgentsInput,
  TaskResultInput,
} from "./contract/requests.js";
import {
  WorkerAcceptRequest,
  WorkerCapabilitiesRequest,
  WorkerContextRequest,
  WorkerHeartbeatRequest,
  WorkerProgressRequest,
} from "./contract/worker.js";

export { EXECUTORS, PHASES, POLICY_CATEGORIES, TIERS, TOPOLOGIES } from "./contract/enums.js";
export { DERIVED_TITLE_MAX, PRIORITY_NAMES, titleFrom } from "./contract/requests.js";

const orNull = <T>(v: T | null | undefined): T | null => v ?? null;

/**
 * SubmitGoal / submitProject input. `kind` comes from the route or mutation, not from the body.
 * Accepts this API's GoalInput and the DGM design's GoalRequest (see contract/requests.ts).
 */
export function parseGoal(raw: unknown, kind: "GOAL" | "PROJECT", now = new Date()): GoalRequest {
  const g = parseWith(GoalInput, raw);
  if (g.deadline && g.deadline.getTime() <= now.getTime())
    throw invalid("deadline", `is already past (${g.deadline.toISOString()})`);
  return {
    goalId: g.goalId ?? undefined,
    kind,
    title: g.title!,
    description: g.description ?? undefined,
    priority: g.priority ?? 5,
    topology: g.topology ?? "aamas",
    domainHints: g.domainHints ?? [],
    constraints: g.constraints ?? {},
    deadline: orNull(g.deadline),
    budget: orNull(g.budget),
    tasks:
      g.tasks?.map((t): TaskSpec => ({
        id: t.id,
        title: t.title,
        description: orNull(t.description),
        domain: t.domain,
        specialization: orNull(t.specialization),
        phase: orNull(t.phase),
        dependsOn: t.dependsOn ?? [],
        estimatedEffortMs: orNull(t.estimatedEffortMs),
        priority: orNull(t.priority),
        inputs: t.inputs ?? {},
        timeoutMs: orNull(t.timeoutMs),
      })) ?? null,
  };
}

export function parsePhaseTransition(raw: unknown): {
  goalId: string;
  fromPhase: Phase;
  toPhase: Phase;
  justification: string | null;
} {
  const t = parseWith(PhaseTransitionInput, raw);
  return { ...t, justification: orNull(t.justification) };
}

export function parseStop(raw: unknown): { goalId: string; reason: string } {
  return parseWith(EmergencyStopInput, raw);
}

export function parseScale(raw: unknown): Omit<Payload<"ScaleAgents">, "trigger" | "loadRatio"> {
  const s = parseWith(ScaleAgentsInput, raw);
  return {
    tier: s.tier,
    topology: s.topology ?? "aamas",
    domain: orNull(s.domain),
    specialization: orNull(s.specialization),
    targetCount: s.targetCount,
    reason: s.reason ?? "requested through the API",
  };
}

export function parseDefinePolicy(raw: unknown): Payload<"DefinePolicy"> {
  const p = parseWith(PolicyInput, raw);
  return {
    policyId: p.policyId,
    name: p.name,
    category: p.category,
    description: p.description,
    rules: p.rules,
    appliesToTiers: (p.appliesToTiers ?? []) as Tier[],
    domains: p.domains ?? [],
    precedence: p.precedence ?? 100,
    effectiveFrom: orNull(p.effectiveFrom),
  };
}

export function parseAmendPolicy(raw: unknown): Payload<"AmendPolicy"> {
  const a = parseWith(PolicyAmendmentInput, raw);
  return {
    policyId: a.policyId,
    expectedVersion: a.expectedVersion,
    rules: a.rules,
    description: orNull(a.description),
    appliesToTiers: orNull(a.appliesToTiers),
    domains: orNull(a.domains),
    precedence: orNull(a.precedence),
    rationale: a.rationale,
    effectiveFrom: orNull(a.effectiveFrom),
  };
}

export function parseRegisterAgent(raw: unknown): Payload<"RegisterAgent"> {
  const a = parseWith(RegisterAgentInput, raw);
  return {
    agentId: a.agentId,
    name: a.name ?? a.agentId,
    tier: a.tier,
    topology: a.topology ?? "aamas",
    domain: orNull(a.domain),
    specialization: orNull(a.specialization),
    superiorId: orNull(a.superiorId),
    capacity: a.capacity ?? 1,
    executor: a.executor ?? "external",
    labels: a.labels ?? {},
    heartbeatIntervalMs: orNull(a.heartbeatIntervalMs),
  };
}

export type TaskOutcome =
  | { completed: { result: string; outputs: Record<string, string>; cost: string; durationMs: number } }
  | { failed: { reason: string; retryable: boolean; durationMs: number | null } };

export function parseTaskResult(raw: unknown): {
  goalId: string;
  taskId: string;
  attempt: number;
  outcome: TaskOutcome;
} {
  const r = parseWith(TaskResultInput, raw);
  const outcome: TaskOutcome =
    r.status === "COMPLETED"
      ? {
          completed: {
            result: r.result!,
            outputs: r.outputs ?? {},
            cost: r.cost ?? "0.0000",
            durationMs: r.durationMs ?? 0,
          },
        }
      : { failed: { reason: r.reason!, retryable: r.retryable ?? true, durationMs: orNull(r.durationMs) } };
  return { goalId: r.goalId, taskId: r.taskId, attempt: r.attempt, outcome };
}

// --- the worker API (gateway/worker-api.ts): a body-level problem names "body" ----------------------------

const attemptOf = (v: { goalId?: string | null; taskId?: string | null; attempt: number }): AttemptRef => ({
  goalId: v.goalId!,
  taskId: v.taskId!,
  attempt: v.attempt,
});

export function parseAccept(raw: unknown): AttemptRef {
  return attemptOf(parseWith(WorkerAcceptRequest, raw, "body"));
}

/** A progress report on the task the path names: the percent done (from progress or percent). */
export function parseProgress(
  raw: unknown,
  taskIdFromPath: string,
): { ref: AttemptRef; percent: number; message: string | null } {
  const p = parseWith(WorkerProgressRequest, raw, "body");
  if (p.taskId && p.taskId !== taskIdFromPath)
    throw invalid("taskId", `is given by the path as "${taskIdFromPath}"; leave it out or send the same value`);
  const percent = p.progress !== undefined && p.progress !== null ? Math.round(p.progress * 100) : p.percent!;
  return { ref: attemptOf({ ...p, taskId: taskIdFromPath }), percent, message: orNull(p.message) };
}

export function parseContextRequest(raw: unknown): {
  ref: AttemptRef;
  need: string;
  keys: string[];
  waitSeconds: number;
} {
  const c = parseWith(WorkerContextRequest, raw, "body");
  return {
    ref: attemptOf(c),
    need: c.question ?? "everything known about the task",
    keys: c.keys ?? [],
    waitSeconds: c.wait ?? 10,
  };
}

export function parseCapabilities(raw: unknown): {
  specialization: string | null;
  capabilities: string[] | null;
  capacity: number | null;
  labels: Record<string, string> | null;
} {
  const c = parseWith(WorkerCapabilitiesRequest, raw, "body");
  return {
    specialization: orNull(c.specialization),
    capabilities: orNull(c.capabilities),
    capacity: orNull(c.capacity),
    labels: orNull(c.labels),
  };
}

export function parseHeartbeat(raw: unknown): {
  load: number | null;
  status: AgentStatus | null;
  inFlightTasks: string[] | null;
  sequence: number | null;
} {
  const h = parseWith(WorkerHeartbeatRequest, raw, "body");
  return {
    load: orNull(h.load),
    status: orNull(h.status),
    inFlightTasks: orNull(h.inFlightTasks),
    sequence: orNull(h.sequence),
  };
}
