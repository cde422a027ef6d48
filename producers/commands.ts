/**
 * Command ingress: how users and programs ask the hierarchy for something. Each helper validates
 * and writes one command with the envelope a command carries (actor USER, aggregate version -1);
 * the president answers with events (GoalSubmitted or GoalRejected, PhaseTransitioned or
 * PhaseTransitionRejected).
 */
import { randomUUID } from "node:crypto";
import type { AggregateType, Payload, Phase } from "../schemas/generated/types.js";
import type { EventWriter, OutgoingMessage, SentMessage } from "./writer.js";

export interface Requester {
  tenantId: string;
  /** User or program id, recorded as the actor. */
  userId: string;
}

export type GoalRequest = Omit<
  Payload<"SubmitGoal">,
  | "goalId"
  | "constraints"
  | "deadline"
  | "domainHints"
  | "tasks"
  | "budget"
  | "description"
  | "kind"
  | "topology"
  | "priority"
> &
  Partial<Payload<"SubmitGoal">>;

/** Submits a goal or project; returns its id (generated when not given) and the command sent. */
export async function submitGoal(
  writer: EventWriter,
  who: Requester,
  request: GoalRequest,
): Promise<{ goalId: string; command: SentMessage }> {
  const goalId = request.goalId ?? `goal-${randomUUID()}`;
  const payload: Payload<"SubmitGoal"> = {
    goalId,
    kind: request.kind ?? "GOAL",
    title: request.title,
    description: request.description ?? request.title,
    priority: request.priority ?? 5,
    constraints: request.constraints ?? {},
    deadline: request.deadline ?? null,
    domainHints: request.domainHints ?? [],
    topology: request.topology ?? "aamas",
    tasks: request.tasks ?? null,
    budget: request.budget ?? null,
  };
  const [command] = await writer.send([
    {
      type: "SubmitGoal",
      context: {
        tenantId: who.tenantId,
        correlationId: goalId,
        actor: { id: who.userId, tier: "USER" },
        aggregate: { type: "GOAL", id: goalId, version: -1 },
      },
      payload,
    },
  ]);
  return { goalId, command: command! };
}

export async function requestPhaseTransition(
  writer: EventWriter,
  who: Requester,
  goalId: string,
  fromPhase: Phase,
  toPhase: Phase,
  justification: string | null = null,
): Promise<SentMessage> {
  const [command] = await writer.send([
    {
      type: "RequestPhaseTransition",
      context: {
        tenantId: who.tenantId,
        correlationId: goalId,
        actor: { id: who.userId, tier: "USER" },
        aggregate: { type: "GOAL", id: goalId, version: -1 },
      },
      payload: { goalId, fromPhase, toPhase, justification },
    },
  ]);
  return command!;
}

/** One command from a user: actor USER, the aggregate it is about at version -1. */
async function userCommand<T extends CommandType>(
  writer: EventWriter,
  who: Requester,
  type: T,
  aggregate: { type: AggregateType; id: string },
  payload: Payload<T>,
): Promise<SentMessage> {
  const [command] = await writer.send([
    {
      type,
      context: {
        tenantId: who.tenantId,
        correlationId: aggregate.id,
        actor: { id: who.userId, tier: "USER" },
        aggregate: { ...aggregate, version: -1 },
      },
      payload,
    } as OutgoingMessage,
  ]);
  return command!;
}

type CommandType = "StopGoal" | "ScaleAgents" | "DefinePolicy" | "AmendPolicy" | "RegisterAgent";

/** Emergency stop of a goal: the president cancels its open tasks and records GoalStopped. */
export function stopGoal(writer: EventWriter, who: Requester, goalId: string, reason: string): Promise<SentMessage> {
  return userCommand(writer, who, "StopGoal", { type: "GOAL", id: goalId }, { goalId, reason });
}

export function scaleAgents(
  writer: EventWriter,
  who: Requester,
  request: Omit<Payload<"ScaleAgents">, "trigger" | "loadRatio">,
): Promise<SentMessage> {
  const id = `${request.topology}/${request.tier}/${request.domain ?? "*"}/${request.specialization ?? "*"}`;
  return userCommand(
    writer,
    who,
    "ScaleAgents",
    { type: "SYSTEM", id },
    { ...request, trigger: "MANUAL", loadRatio: null },
  );
}

export function definePolicy(
  writer: EventWriter,
  who: Requester,
  policy: Payload<"DefinePolicy">,
): Promise<SentMessage> {
  return userCommand(writer, who, "DefinePolicy", { type: "POLICY", id: policy.policyId }, policy);
}

export function amendPolicy(
  writer: EventWriter,
  who: Requester,
  amendment: Payload<"AmendPolicy">,
): Promise<SentMessage> {
  return userCommand(writer, who, "AmendPolicy", { type: "POLICY", id: amendment.policyId }, amendment);
}

export function registerAgent(
  writer: EventWriter,
  who: Requester,
  agent: Payload<"RegisterAgent">,
): Promise<SentMessage> {
  return userCommand(writer, who, "RegisterAgent", { type: "AGENT", id: agent.agentId }, agent);
}

/**
 * An agent's result for the attempt it holds, written as the agent itself (actor WORKER), exactly
 * as an external agent on Kafka would (processors/examples/external-agent.ts).
 */
export async function reportTaskOutcome(
  writer: EventWriter,
  agent: { tenantId: string; agentId: string },
  task: { goalId: string; taskId: string; attempt: number },
  outcome:
    | { completed: Pick<Payload<"TaskCompleted">, "result" | "outputs" | "cost" | "durationMs"> }
    | { failed: Pick<Payload<"TaskFailed">, "reason" | "retryable" | "durationMs"> },
): Promise<SentMessage> {
  const context = {
    tenantId: agent.tenantId,
    correlationId: task.goalId,
    actor: { id: agent.agentId, tier: "WORKER" as const },
    aggregate: { type: "TASK" as const, id: task.taskId, version: -1 },
  };
  const ids = { ...task, agentId: agent.agentId };
  const [sent] = await writer.send([
    "completed" in outcome
      ? { type: "TaskCompleted", context, payload: { ...ids, ...outcome.completed, exitCode: null, usage: null } }
      : {
          type: "TaskFailed",
          context,
          payload: {
            ...ids,
            ...outcome.failed,
            failureKind: "EXECUTION_ERROR",
            exitCode: null,
            output: null,
            usage: null,
          },
        },
  ]);
  return sent!;
}

// --- an agent's own writes, for agents that speak only HTTP (gateway/worker-api.ts) --------------------
// Each is what an external agent on Kafka writes itself (processors/examples/external-agent.ts), as the
// agent (actor: its id and tier), so the hierarchy cannot tell the two kinds of agent apart.

/** The agent a write speaks for, and the tenant of the work it is about. */
export interface AgentSelf {
  tenantId: string;
  agentId: string;
}

/** One attempt of a task, as the worker holding it names it. */
export interface AttemptRef {
  goalId: string;
  taskId: string;
  attempt: number;
}

const attemptContext = (agent: AgentSelf, task: AttemptRef, causationId?: string | null) => ({
  tenantId: agent.tenantId,
  correlationId: task.goalId,
  ...(causationId ? { causationId } : {}),
  actor: { id: agent.agentId, tier: "WORKER" as const },
  aggregate: { type: "TASK" as const, id: task.taskId, version: -1 },
});

/**
 * The request id of a worker's context request for an attempt: the same on every retry, so the
 * agent (or its restart) finds its earlier request and answer and asks once.
 */
export const contextRequestId = (agentId: string, taskId: string, attempt: number): string =>
  `ctx-${taskId}-${attempt}-${agentId}`;

/** TaskAccepted then TaskStarted (executor external) for the attempt the agent holds. */
export function acceptAndStartTask(
  writer: EventWriter,
  agent: AgentSelf,
  task: AttemptRef,
  causationId?: string | null,
): Promise<SentMessage[]> {
  const context = attemptContext(agent, task, causationId);
  const ids = { ...task, agentId: agent.agentId };
  return writer.send([
    { type: "TaskAccepted", context, payload: { ...ids, tier: "WORKER" } },
    { type: "TaskStarted", context, payload: { ...ids, executor: "external" } },
  ]);
}

/** TaskProgressed: how far the agent is with its attempt (percent 0-100). */
export async function reportTaskProgress(
  writer: EventWriter,
  agent: AgentSelf,
  task: AttemptRef,
  progress: { percent: number; message: string | null; metrics?: Record<string, number> },
): Promise<SentMessage> {
  const [sent] = await writer.send([
    {
      type: "TaskProgressed",
      context: attemptContext(agent, task),
      payload: { ...task, agentId: agent.agentId, ...progress, metrics: progress.metrics ?? {} },
    },
  ]);
  return sent!;
}

/** ContextRequested to the worker's superior (targetAgentId null); its id from contextRequestId. */
export async function requestTaskContext(
  writer: EventWriter,
  agent: AgentSelf,
  task: AttemptRef,
  need: string,
  keys: string[] = [],
): Promise<{ requestId: string; sent: SentMessage }> {
  const requestId = contextRequestId(agent.agentId, task.taskId, task.attempt);
  const [sent] = await writer.send([
    {
      type: "ContextRequested",
      context: attemptContext(agent, task),
      payload: {
        requestId,
        goalId: task.goalId,
        taskId: task.taskId,
        requesterId: agent.agentId,
        requesterTier: "WORKER",
        targetAgentId: null,
        need,
        keys,
      },
    },
  ]);
  return { requestId, sent: sent! };
}

/** AgentHeartbeat as the agent: the health monitor watches it from its first one on. */
export async function agentHeartbeat(
  writer: EventWriter,
  agent: AgentSelf,
  beat: Omit<Payload<"AgentHeartbeat">, "agentId">,
): Promise<SentMessage> {
  const [sent] = await writer.send([
    {
      type: "AgentHeartbeat",
      context: {
        tenantId: agent.tenantId,
        correlationId: agent.agentId,
        actor: { id: agent.agentId, tier: beat.tier },
        aggregate: { type: "AGENT", id: agent.agentId, version: -1 },
      },
      payload: { ...beat, agentId: agent.agentId },
    },
  ]);
  return sent!;
}

/**
 * An agent registering itself again under its own id with new capabilities (specialization,
 * capacity, labels): an AgentRegistered as the agent, as an external agent announces itself. The
 * RegisterAgent command is no use here: the scaler refuses an id that is taken.
 */
export async function reregisterAgent(
  writer: EventWriter,
  agent: AgentSelf,
  registration: Omit<Payload<"AgentRegistered">, "commandId">,
): Promise<SentMessage> {
  const [sent] = await writer.send([
    {
      type: "AgentRegistered",
      context: {
        tenantId: agent.tenantId,
        correlationId: agent.agentId,
        actor: { id: agent.agentId, tier: registration.tier },
        aggregate: { type: "AGENT", id: agent.agentId, version: -1 },
      },
      payload: { ...registration, agentId: agent.agentId, commandId: null },
    },
  ]);
  return sent!;
}
