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
