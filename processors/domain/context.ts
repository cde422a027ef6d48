/**
 * The hierarchy's conversation about a task, answered from the state a tier already folds:
 *
 * - Context requests (ContextRequested -> ContextProvided). A worker asks its superior (the mayor in
 *   aamas, the sub-master in dgm; `targetAgentId` may name another agent, e.g. the president) for
 *   what it needs. The agent asked answers at once from its state: the task's inputs, each
 *   dependency's result and outputs, and the goal's title and constraints when its tier reads the
 *   goals topic (the president; the tiers below only know the goal's id). It never forwards a
 *   request up: every tier folds the whole tasks topic, so a superior knows no more about the
 *   task's dependencies than the mayor does, and a second hop would leave the worker waiting on two
 *   answers. Instead it answers with what it has, and `note` names the keys it could not find, so
 *   the requester can ask the president directly (targetAgentId) for goal-level items.
 * - Peer queries (QueryAsked -> QueryAnswered). A hosted agent answers on its own behalf what its
 *   state says about the task asked about: its status and, once this agent completed it, its result
 *   (attachments: its outputs). Questions are not interpreted; a query to an external agent is left
 *   to that agent, which reads the tasks topic like everything else.
 * - Duplicate claims (ConflictRaised -> ConflictResolved). A worker that accepts, starts, completes
 *   or fails an attempt assigned to another worker claims work that is not its own. The state
 *   ignores such a report (state.ts); the dispatcher holding the task (mayor, sub-master) raises the
 *   conflict (SCOPE_OVERLAP: two agents on one piece of work) and rules for the assignee at once.
 *
 * Each answer is written once: the state remembers answered requests, answered queries and raised
 * conflicts, so a redelivered input decides nothing again.
 *
 * COMMUNICATION policies (security.ts) say which edges of the hierarchy a request or a query may
 * travel, judged by the versions in effect when it was asked. The agent asked checks before it
 * answers: a refused one gets a PolicyEvaluated DENY and no answer; an allowed one its ALLOW (when
 * a policy has a rule about it) and the answer as before. A refusal is written once too: the state
 * remembers the DENY (state.ts `refused`, by the request's event and its requestId or queryId), so
 * the request decided again, or sent again with the same id, writes nothing new.
 */
import type { Actor } from "../../schemas/generated/types.js";
import type { AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext, type TierInput } from "./decider.js";
import { checkConversation } from "./policies/security.js";
import { wasRefused, type HierarchyState, type TaskState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";

type Hosted = (agentId: string, ctx: DecisionContext) => AgentInfo | null;

const actorOf = (me: AgentInfo): Actor => ({ id: me.agentId, tier: me.tier });

/** The agent a ContextRequested is addressed to: its target, else the requester's superior. */
export function contextTarget(
  e: Extract<TierInput, { type: "ContextRequested" }>["value"],
  ctx: DecisionContext,
): string | null {
  return e.targetAgentId ?? ctx.directory.get(e.requesterId)?.superiorId ?? null;
}

/** Everything the state holds for a task: its inputs, its dependencies' results and outputs, the goal. */
export function contextOf(state: HierarchyState, goalId: string, taskId: string): Record<string, string> {
  const out: Record<string, string> = {};
  const goal = state.goals.get(goalId);
  if (goal && !goal.partial) {
    out["goal.title"] = goal.title;
    for (const [k, v] of Object.entries(goal.constraints)) out[`constraint.${k}`] = v;
  }
  const task = state.tasks.get(taskKey(goalId, taskId));
  if (!task) return out;
  out["task.title"] = task.spec.title;
  if (task.spec.description !== null) out["task.description"] = task.spec.description;
  for (const [k, v] of Object.entries(task.spec.inputs)) out[`input.${k}`] = v;
  for (const d of dependencyResults(state, task)) {
    if (d.result !== null) out[`${d.taskId}.result`] = d.result;
    for (const [k, v] of Object.entries(d.outputs)) out[`${d.taskId}.${k}`] = v;
  }
  return out;
}

/** A completed dependency of a task, as an executor's context gets it (the DGM design's context retriever). */
export interface DependencyResult {
  taskId: string;
  title: string;
  result: string | null;
  outputs: Record<string, string>;
}

/** The results and outputs of a task's completed dependencies, in dependsOn order. */
export function dependencyResults(state: HierarchyState, task: TaskState): DependencyResult[] {
  const out: DependencyResult[] = [];
  for (const dep of task.spec.dependsOn) {
    const d = state.tasks.get(taskKey(task.goalId, dep));
    if (!d || d.status !== "COMPLETED") continue;
    out.push({ taskId: dep, title: d.spec.title, result: d.result, outputs: d.outputs });
  }
  return out;
}

/**
 * The items named by `keys` (everything when empty). A key is a full item name (`build.output`,
 * `input.text`, `constraint.budget`, `goal.title`) or a bare name, looked up in the dependencies'
 * outputs (in dependsOn order), then the constraints, then the inputs.
 */
export function pick(
  all: Record<string, string>,
  keys: string[],
  dependsOn: string[],
): { context: Record<string, string>; missing: string[] } {
  if (keys.length === 0) return { context: all, missing: [] };
  const context: Record<string, string> = {};
  const missing: string[] = [];
  for (const key of keys) {
    const candidates = [key, ...dependsOn.map((d) => `${d}.${key}`), `constraint.${key}`, `input.${key}`];
    const found = candidates.find((c) => all[c] !== undefined);
    if (found === undefined) missing.push(key);
    else context[key] = all[found]!;
  }
  return { context, missing };
}

/** A ContextRequested addressed to an agent `hosted` accepts: its ContextProvided, once. */
export function answerContext(
  input: Extract<TierInput, { type: "ContextRequested" }>,
  state: HierarchyState,
  ctx: DecisionContext,
  hosted: Hosted,
): Decision[] {
  const e = input.value;
  const target = contextTarget(e, ctx);
  const me = target ? hosted(target, ctx) : null;
  if (!me || state.goals.get(e.goalId)?.contextAnswered.has(e.requestId)) return [];
  if (wasRefused(state, e.envelope.eventId, { type: "ContextRequested", id: e.requestId })) return [];
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  const comms = checkConversation(
    {
      kind: "ContextRequested",
      id: e.requestId,
      goalId: e.goalId,
      taskId: e.taskId,
      taskDomain: task?.spec.domain ?? null,
      askerId: e.requesterId,
      askerTier: e.requesterTier,
      asked: me,
      occurredAt: e.envelope.occurredAt,
    },
    ctx.directory,
    ctx.policies,
  );
  if (comms.verdict === "DENY") return comms.decisions;
  const { context, missing } = pick(contextOf(state, e.goalId, e.taskId), e.keys, task?.spec.dependsOn ?? []);
  const notes: string[] = [];
  if (!task) notes.push(`${me.name} knows no task ${e.taskId} of ${e.goalId}`);
  else {
    const pending = task.spec.dependsOn.filter((d) => state.tasks.get(taskKey(e.goalId, d))?.status !== "COMPLETED");
    if (pending.length > 0) notes.push(`not completed yet: ${pending.join(", ")}`);
  }
  if (missing.length > 0) notes.push(`${me.name} has no ${missing.join(", ")}`);
  return [
    ...comms.decisions,
    decision(
      "ContextProvided",
      {
        requestId: e.requestId,
        goalId: e.goalId,
        taskId: e.taskId,
        providerId: me.agentId,
        requesterId: e.requesterId,
        context,
        note: notes.length > 0 ? notes.join("; ") : null,
      },
      actorOf(me),
      { type: "TASK", id: e.taskId },
    ),
  ];
}

/** A QueryAsked to an agent `hosted` accepts: what its state says about the task asked about, once. */
export function answerQuery(
  input: Extract<TierInput, { type: "QueryAsked" }>,
  state: HierarchyState,
  ctx: DecisionContext,
  hosted: Hosted,
): Decision[] {
  const e = input.value;
  const me = hosted(e.toAgentId, ctx);
  if (!me || state.goals.get(e.goalId)?.queriesAnswered.has(e.queryId)) return [];
  if (wasRefused(state, e.envelope.eventId, { type: "QueryAsked", id: e.queryId })) return [];
  let answer: string;
  let attachments: Record<string, string> = {};
  const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
  const comms = checkConversation(
    {
      kind: "QueryAsked",
      id: e.queryId,
      goalId: e.goalId,
      taskId: e.taskId,
      taskDomain: task?.spec.domain ?? null,
      askerId: e.fromAgentId,
      askerTier: e.fromTier,
      asked: me,
      occurredAt: e.envelope.occurredAt,
    },
    ctx.directory,
    ctx.policies,
  );
  if (comms.verdict === "DENY") return comms.decisions;
  if (!e.taskId) answer = `${me.name} answers only about tasks`;
  else if (!task) answer = `${me.name} knows no task ${e.taskId}`;
  else {
    const mine = [task.workerId, task.mayorId, task.governorId].includes(me.agentId);
    if (task.status === "COMPLETED" && mine) {
      answer = task.result ?? "";
      attachments = task.outputs;
    } else
      answer = `task ${e.taskId} is ${task.status} (attempt ${task.attempt})${mine ? "" : `, not held by ${me.name}`}`;
  }
  return [
    ...comms.decisions,
    decision(
      "QueryAnswered",
      {
        queryId: e.queryId,
        goalId: e.goalId,
        taskId: e.taskId,
        fromAgentId: me.agentId,
        toAgentId: e.fromAgentId,
        answer,
        attachments,
      },
      actorOf(me),
      e.taskId ? { type: "TASK", id: e.taskId } : { type: "GOAL", id: e.goalId },
    ),
  ];
}

type Claim = Extract<TierInput, { type: "TaskAccepted" | "TaskStarted" | "TaskCompleted" | "TaskFailed" }>;

export const conflictIdOf = (goalId: string, taskId: string, attempt: number, claimant: string) =>
  `conflict-${goalId}-${taskId}-${attempt}-${claimant}`;

/**
 * A report on an attempt by a worker that is not its assignee: the dispatcher holding the task
 * raises a duplicate claim and rules for the assignee, once per (attempt, claimant).
 */
export function duplicateClaim(
  input: Claim,
  state: HierarchyState,
  ctx: DecisionContext,
  holder: (t: { mayorId: string | null; governorId: string | null }) => string | null,
  hosted: Hosted,
): Decision[] {
  const e = input.value;
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  if (!task || !task.workerId || task.attempt !== e.attempt || task.workerId === e.agentId) return [];
  const heldBy = holder(task);
  const me = heldBy ? hosted(heldBy, ctx) : null;
  if (!me) return [];
  const conflictId = conflictIdOf(e.goalId, e.taskId, e.attempt, e.agentId);
  if (state.goals.get(e.goalId)?.conflicts.has(conflictId)) return [];
  const assignee = task.workerId;
  const ref = { type: "TASK" as const, id: e.taskId };
  const verb = { TaskAccepted: "accepted", TaskStarted: "started", TaskCompleted: "completed", TaskFailed: "failed" }[
    input.type
  ];
  return [
    decision(
      "ConflictRaised",
      {
        conflictId,
        goalId: e.goalId,
        kind: "SCOPE_OVERLAP",
        partyAgentIds: [assignee, e.agentId],
        taskIds: [e.taskId],
        description: `${e.agentId} ${verb} attempt ${e.attempt} of task ${e.taskId}, which ${me.name} assigned to ${assignee}`,
        resolverTier: me.tier,
        resolverAgentId: me.agentId,
      },
      actorOf(me),
      ref,
    ),
    decision(
      "ConflictResolved",
      {
        conflictId,
        goalId: e.goalId,
        resolution: `attempt ${e.attempt} of task ${e.taskId} stays with its assignee ${assignee}; ${e.agentId}'s reports on it are ignored`,
        winnerAgentId: assignee,
        actions: [`ignore ${e.agentId}'s reports on task ${e.taskId} attempt ${e.attempt}`],
        consultedPolicies: [],
      },
      actorOf(me),
      ref,
    ),
  ];
}
