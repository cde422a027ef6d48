/**
 * Command ingress: how users and programs ask the hierarchy for something. Each helper validates
 * and writes one command with the envelope a command carries (actor USER, aggregate version -1);
 * the president answers with events (GoalSubmitted or GoalRejected, PhaseTransitioned or
 * PhaseTransitionRejected).
 */
import { randomUUID } from "node:crypto";
import type { Payload, Phase } from "../schemas/generated/types.js";
import type { EventWriter, SentMessage } from "./writer.js";

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
