/**
 * The president (aamas) or master (dgm): accepts or rejects goals, decomposes them, releases each
 * task to its domain's governor once every dependency completed, walks projects through the eight
 * phases behind their gates, and completes or fails the goal with the aggregated result.
 *
 * Commands to it (SubmitGoal, StopGoal, RequestPhaseTransition) are first judged by the SECURITY
 * policies in effect when they were issued (security.ts): a refused one is answered with the DENY
 * evaluation and its rejection (GoalRejected POLICY_DENIED, PhaseTransitionRejected; a StopGoal has
 * none, the evaluation alone records it). Every outcome of a goal (completed, failed, stopped,
 * rejected) is announced to its hierarchy with a NotificationBroadcast, written last with it.
 * A refused StopGoal is remembered (state.ts `refused`, from its DENY on polity.governance.events,
 * which the top folds), so the command decided again writes no second DENY.
 *
 * An escalation that reaches the top is decided under the ESCALATION policies in effect when it
 * was raised that apply to the top's tier and the task's domain (escalation-policy.ts): a SPLIT
 * route splits the task (unless it is a part, or not failed), as a governor would, into parts its
 * domain tier runs; every other route (the domain's tiers already redelivered what they could)
 * fails the goal. The policy versions consulted are named in the EscalationResolved, and a
 * PolicyEvaluated records the decision. Who raises and resolves which escalation: escalation.ts.
 *
 * One input can call for many steps about a goal (submitted, validated, a phase entered and
 * snapshotted, planned, passed when empty, the next entered, ... completed). Each step's events are
 * emitted into a draft of the goal (a Turn, decider.ts `Draft`), which folds them with `evolve` as
 * the host will: the next step reads the goal's version, phase, status and tasks from there.
 */
import type {
  Actor,
  GoalRejectionCode,
  GoalStatus,
  MessageTypeName,
  Payload,
  Phase,
  PolicyRef,
  SubmitGoal,
  RequestPhaseTransition,
  StopGoal,
  TaskSpec,
  Topology,
} from "../../schemas/generated/types.js";
import { TIERS_OF, type AgentInfo } from "./directory.js";
import {
  decision,
  Draft,
  type Decision,
  type DecisionContext,
  type PlanningFinished,
  type TierDecider,
  type TierInput,
} from "./decider.js";
import { escalationRaised, escalationResolved } from "./escalation.js";
import { answerContext } from "./context.js";
import { checkConstitution } from "./policies/constitution.js";
import { checkCommand, type AccessCheck, type GovernedCommand } from "./policies/security.js";
import {
  cite,
  DEFAULT_SPLIT_INTO,
  escalationEvaluated,
  escalationPolicyAt,
  splitDecisions,
  splitParentOf,
  splitSpecs,
  type EscalationPolicy,
} from "./policies/escalation-policy.js";
import { refOf } from "./policies/book.js";
import { DEFAULT_RETRY_LIMITS, retryLimitsFor } from "./limits.js";
import { DEFAULT_PLANNING, nextPhase, planningOf, taskGraphProblems, type PlanningConfig } from "./planner.js";
import { ATTEMPT_FAILED, GOAL_FINAL } from "./kernel/status.js";
import { atRiskAt, DEFAULT_DEADLINES, deadlineSettingsOf, timeLimitsFor } from "./time-limits.js";
import {
  deadlineEscalationIds,
  isOpen,
  tasksOf,
  type GoalState,
  type HierarchyState,
  type TaskState,
} from "./kernel/state.js";
import { sumCosts } from "./kernel/costs.js";
import { taskKey } from "./kernel/keys.js";

/**
 * Attempts a task gets per delivery before its dispatcher escalates, when the topology configures
 * no `retries.worker` (DGM: a worker task is delivered up to 5 times). See limits.ts.
 */
export const DEFAULT_MAX_ATTEMPTS = DEFAULT_RETRY_LIMITS.worker;

/**
 * A running goal is snapshotted each time this many more of its tasks completed since its latest
 * snapshot, besides on every phase entry and at its end; a reader of a long goal then never replays
 * more than this many completions from a snapshot. Counted from the log, so deciding again is a no-op.
 */
export const SNAPSHOT_EVERY_COMPLETIONS = 25;

/** Goal constraint that makes a project wait for RequestPhaseTransition between phases. */
export const PHASE_GATE = "phaseGate";

function actorOf(agent: AgentInfo): Actor {
  return { id: agent.agentId, tier: agent.tier };
}

const taskRef = (taskId: string) => ({ type: "TASK" as const, id: taskId });

/**
 * One decision of the top about one goal: what it decided so far, folded into a draft of the goal
 * (decider.ts `Draft`) as its host will fold it, so every step reads the goal as the log will hold
 * it at that point (its version, phase, status, tasks); the top deciding; the context.
 */
interface Turn {
  readonly draft: Draft;
  readonly top: AgentInfo;
  readonly actor: Actor;
  readonly ctx: DecisionContext;
}

function turnOf(
  state: HierarchyState,
  goalId: string,
  top: AgentInfo,
  ctx: DecisionContext,
  cause: { eventId: string; tenantId: string } | null = null,
): Turn {
  return { draft: new Draft(state, goalId, { now: ctx.now, cause }), top, actor: actorOf(top), ctx };
}

/** The goal as the turn's decisions so far leave it. */
function goalOf(turn: Turn): GoalState {
  const goal = turn.draft.goal;
  if (!goal) throw new Error(`goal ${turn.draft.goalId} is decided on before its GoalSubmitted`);
  return goal;
}

/** An event of the goal itself (polity.goals.events), versioned one past the goal's version in the draft. */
function goalEvent<T extends MessageTypeName>(turn: Turn, type: T, payload: Payload<T>): void {
  turn.draft.emit(decision(type, payload, turn.actor, turn.draft.goalRef()));
}

export const president: TierDecider = {
  role: "president",
  reads: new Set([
    "SubmitGoal",
    "RequestPhaseTransition",
    "StopGoal",
    "GoalSubmitted",
    "GoalValidated",
    "GoalDecomposed",
    "PlanRequested",
    "PlanProposed",
    "GoalCompleted",
    "GoalFailed",
    "GoalStopped",
    "GoalRejected",
    "PhaseTransitioned",
    "PhaseTransitionRejected",
    "TaskCreated",
    "TaskAssigned",
    "TaskCompleted",
    "TaskFailed",
    "TaskTimedOut",
    "TaskRetried",
    "TaskCancelled",
    "EscalationRaised",
    "EscalationResolved",
    // Its own refusals (a DENY on polity.governance.events), so each is written once.
    "PolicyEvaluated",
    // Context requests addressed to the top (goal title, constraints), answered once (context.ts).
    "ContextRequested",
    "ContextProvided",
  ]),
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "SubmitGoal":
        return submit(input.value, state, ctx);
      case "RequestPhaseTransition":
        return requestTransition(input.value, state, ctx);
      case "StopGoal":
        return stop(input.value, state, ctx);
      case "TaskCompleted":
      case "TaskCancelled":
        return reconcile(input.value, state, ctx);
      case "PlanningFinished":
        return planned(input, state, ctx);
      case "EscalationRaised":
        return escalated(input.value, state, ctx);
      // Time passed: goal deadlines at risk or missed (time-limits.ts).
      case "ClockTicked":
        return watchDeadlines(state, input.now, ctx);
      case "ContextRequested":
        return answerContext(input, state, ctx, (id, c) => {
          const agent = c.directory.get(id);
          return agent && (agent.tier === "PRESIDENT" || agent.tier === "MASTER") && c.hosts(id) ? agent : null;
        });
      default:
        return [];
    }
  },
};

function topOf(goal: GoalState, ctx: DecisionContext): AgentInfo | null {
  const top = ctx.directory.top(goal.topology);
  return top && ctx.hosts(top.agentId) ? top : null;
}

// ---- submission ------------------------------------------------------------------------------

function submit(cmd: SubmitGoal, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const commandId = cmd.envelope.eventId;
  const existing = state.goals.get(cmd.goalId);
  if (existing?.answeredCommands.has(commandId) || state.rejectedCommands.has(commandId)) return [];
  const top = ctx.directory.top(cmd.topology);
  if (top && !ctx.hosts(top.agentId)) return [];
  const actor: Actor = top ? actorOf(top) : { id: "president", tier: "SYSTEM" };
  const reject = (code: GoalRejectionCode, reasons: string[]) => rejection(cmd, code, reasons, actor, ctx);

  // Who may submit: the SECURITY policies in effect when the command was issued.
  const security = checkIssuer("SubmitGoal", cmd, cmd.topology, goalDomains(cmd, ctx), actor, ctx);
  if (security.verdict === "DENY")
    return [...security.decisions, ...rejection(cmd, "POLICY_DENIED", security.reasons, actor, ctx, security.denying)];
  if (existing) return reject("DUPLICATE_GOAL", [`goal id "${cmd.goalId}" is already taken; submit with a new goalId`]);
  if (!top)
    return reject("UNKNOWN_TOPOLOGY", [
      `no ${cmd.topology === "dgm" ? "master" : "president"} is registered for topology "${cmd.topology}"`,
    ]);
  const invalid: string[] = [];
  if (!Number.isInteger(cmd.priority) || cmd.priority < 1 || cmd.priority > 10)
    invalid.push(`priority must be an integer from 1 to 10, got ${cmd.priority}`);
  if (cmd.deadline && cmd.deadline.getTime() <= ctx.now.getTime())
    invalid.push(`deadline ${cmd.deadline.toISOString()} is already past`);
  if (!cmd.title.trim()) invalid.push("title is empty");
  invalid.push(...deadlineSettingsOf(cmd.constraints, DEFAULT_DEADLINES).problems);
  if (!cmd.tasks)
    invalid.push(...planningOf(cmd.constraints, ctx.planning?.(cmd.topology) ?? DEFAULT_PLANNING).problems);
  if (invalid.length > 0) return reject("INVALID_REQUEST", invalid);

  const known = new Set(ctx.directory.domainsOf(cmd.topology));
  const unknownHints = cmd.domainHints.filter((d) => !known.has(d));
  if (unknownHints.length > 0)
    return reject(
      "UNKNOWN_DOMAIN",
      unknownHints.map(
        (d) => `domain hint "${d}" has no governor in ${cmd.topology}; known domains: ${[...known].join(", ")}`,
      ),
    );

  if (cmd.tasks) {
    const graph = taskGraphProblems(cmd.tasks);
    if (cmd.kind === "PROJECT")
      for (const t of cmd.tasks) if (!t.phase) graph.push(`project task "${t.id}" has no phase`);
    if (graph.length > 0) return reject("INVALID_TASK_GRAPH", graph);
    const routing = routingProblems(cmd.tasks, cmd.topology, ctx);
    if (routing.length > 0) return reject("UNKNOWN_DOMAIN", routing);
  }

  // The constitution in effect when the goal was submitted: a violation rejects it.
  const constitution = checkConstitution(cmd, goalDomains(cmd, ctx), actor, ctx.policies);
  if (constitution.blocking.length > 0)
    return [
      ...security.decisions,
      ...constitution.decisions,
      ...rejection(
        cmd,
        "CONSTITUTIONAL_VIOLATION",
        constitution.blocking.flatMap((f) => f.reasons),
        actor,
        ctx,
        constitution.blocking.map((f) => ({ policyId: f.policy.policyId, version: f.policy.version })),
      ),
    ];

  const turn = turnOf(state, cmd.goalId, top, ctx, cmd.envelope);
  turn.draft.emit(...security.decisions, ...constitution.decisions);
  goalEvent(turn, "GoalSubmitted", {
    goalId: cmd.goalId,
    commandId,
    kind: cmd.kind,
    title: cmd.title,
    description: cmd.description,
    priority: cmd.priority,
    constraints: cmd.constraints,
    deadline: cmd.deadline,
    domainHints: cmd.domainHints,
    topology: cmd.topology,
    tasks: cmd.tasks,
    budget: cmd.budget,
  });
  goalEvent(turn, "GoalValidated", {
    goalId: cmd.goalId,
    consultedPolicies: [...security.consulted, ...constitution.consulted],
    warnings: [...(security.verdict === "WARN" ? security.reasons : []), ...constitution.warnings],
  });
  if (cmd.kind === "PROJECT") enterPhase(turn, "INITIATION", null);
  else decompose(turn, null);
  return turn.draft.decisions;
}

/** GoalRejected, announced to the hierarchy the goal named. */
function rejection(
  cmd: SubmitGoal,
  code: GoalRejectionCode,
  reasons: string[],
  actor: Actor,
  ctx: DecisionContext,
  violatedPolicies: PolicyRef[] = [],
): Decision[] {
  const commandId = cmd.envelope.eventId;
  return [
    decision("GoalRejected", { goalId: cmd.goalId, commandId, code, reasons, violatedPolicies }, actor, {
      type: "GOAL",
      id: cmd.goalId,
    }),
    outcomeNotice(
      {
        goalId: cmd.goalId,
        title: cmd.title,
        topology: cmd.topology,
        tenantId: cmd.envelope.tenantId,
        domains: goalDomains(cmd, ctx),
      },
      "REJECTED",
      `${code}: ${reasons.join("; ")}`,
      {
        commandId,
        code,
        submittedBy: cmd.envelope.actor.id,
        violatedPolicies: violatedPolicies.map((p) => `${p.policyId}@${p.version}`).join(","),
      },
      actor,
      `goal-rejected-${commandId}`,
    ),
  ];
}

/**
 * The SECURITY check of a command to the top: whether its issuer may issue it, by the versions in
 * effect when it was issued. Its PolicyEvaluated (when a policy applied) is written whatever the verdict.
 */
function checkIssuer(
  command: GovernedCommand,
  cmd: SubmitGoal | StopGoal | RequestPhaseTransition,
  topology: Topology,
  domains: string[],
  actor: Actor,
  ctx: DecisionContext,
): AccessCheck {
  return checkCommand(
    {
      command,
      issuer: cmd.envelope.actor,
      occurredAt: cmd.envelope.occurredAt,
      goalId: cmd.goalId,
      domains,
      decider: actor,
      tier: TIERS_OF[topology][0]!,
    },
    ctx.policies,
  );
}

// ---- notifications ----------------------------------------------------------------------------

type Outcome = "COMPLETED" | "FAILED" | "STOPPED" | "REJECTED";

const NOTICE_SEVERITY: Record<Outcome, Payload<"NotificationBroadcast">["severity"]> = {
  COMPLETED: "INFO",
  FAILED: "CRITICAL",
  STOPPED: "WARNING",
  REJECTED: "WARNING",
};

/** The domains a goal in the state reaches: its tasks' and its hints, sorted. */
function domainsReached(goal: GoalState, state: HierarchyState): string[] {
  return [...new Set([...goal.domainHints, ...tasksOf(state, goal).map((t) => t.spec.domain)])].sort();
}

/**
 * NotificationBroadcast of a goal's outcome, addressed to the hierarchy that ran it (or would
 * have): every tier of its topology, the domains it reached (empty, so all, when it reached none).
 * Written with the outcome it announces, so it is decided once with it.
 */
function outcomeNotice(
  goal: { goalId: string; title: string; topology: Topology; tenantId: string; domains: string[] },
  outcome: Outcome,
  summary: string,
  data: Record<string, string>,
  actor: Actor,
  notificationId = `goal-${outcome.toLowerCase()}-${goal.goalId}`,
): Decision {
  const named = goal.title.trim() ? `"${goal.title}" (${goal.goalId})` : goal.goalId;
  return decision(
    "NotificationBroadcast",
    {
      notificationId,
      subject: `goal-${outcome.toLowerCase()}`,
      message: `Goal ${named} ${outcome.toLowerCase()}: ${summary}`,
      severity: NOTICE_SEVERITY[outcome],
      audienceTiers: [...TIERS_OF[goal.topology]],
      audienceDomains: goal.domains,
      goalId: goal.goalId,
      expiresAt: null,
      data: { goalId: goal.goalId, outcome, ...data },
    },
    actor,
    { type: "SYSTEM", id: goal.tenantId },
  );
}

/** Every domain a goal would use: its hints and explicit tasks' domains, or its topology's when it has neither. */
function goalDomains(cmd: SubmitGoal, ctx: DecisionContext): string[] {
  const named = new Set([...cmd.domainHints, ...(cmd.tasks ?? []).map((t) => t.domain)]);
  return named.size > 0 ? [...named].sort() : ctx.directory.domainsOf(cmd.topology);
}

function routingProblems(tasks: readonly TaskSpec[], topology: GoalState["topology"], ctx: DecisionContext): string[] {
  const problems: string[] = [];
  for (const t of tasks) {
    const governor = ctx.directory.governorOf(topology, t.domain);
    if (!governor) problems.push(`task "${t.id}": domain "${t.domain}" has no governor in ${topology}`);
    else if (ctx.directory.workersUnder(governor.agentId, t.specialization).length === 0)
      problems.push(`task "${t.id}": no worker of ${t.domain} has specialization "${t.specialization}"`);
  }
  return problems;
}

// ---- decomposition and release ----------------------------------------------------------------

function domainsFor(goal: GoalState, ctx: DecisionContext): string[] {
  return goal.domainHints.length > 0 ? [...goal.domainHints] : ctx.directory.domainsOf(goal.topology);
}

/**
 * Plans a goal (phase null) or one phase of a project: the explicit tasks given with it, the
 * template planner's at once, or, with the model planner, a PlanRequested whose answer comes back
 * later (`planned`).
 */
function decompose(turn: Turn, phase: Phase | null): void {
  const goal = goalOf(turn);
  const { ctx } = turn;
  if (goal.explicitTasks) {
    const tasks = goal.explicitTasks.filter((t) => phase === null || t.phase === phase);
    return decomposeInto(turn, phase, tasks, "explicit");
  }
  const planning = planningOf(goal.constraints, ctx.planning?.(goal.topology) ?? DEFAULT_PLANNING).config;
  if (planning.planner === "model") return planRequest(turn, phase, 1, [], planning);
  const tasks = ctx.planner.plan({
    goalId: goal.goalId,
    title: goal.title,
    description: goal.description,
    domains: domainsFor(goal, ctx),
    specializations: (d) => ctx.directory.specializationsOf(goal.topology, d),
    phase,
  });
  decomposeInto(turn, phase, tasks, ctx.planner.name);
}

/** PlanRequested: asks the model planner for a plan of the goal (or phase); its host runs the call. */
function planRequest(
  turn: Turn,
  phase: Phase | null,
  attempt: number,
  feedback: string[],
  planning: PlanningConfig,
): void {
  const goal = goalOf(turn);
  const domains = domainsFor(goal, turn.ctx);
  goalEvent(turn, "PlanRequested", {
    goalId: goal.goalId,
    requestId: `${goal.goalId}:${phase ?? "goal"}:${attempt}`,
    phase,
    attempt,
    maxAttempts: planning.maxAttempts,
    planner: "model",
    model: planning.model,
    domains,
    specializations: Object.fromEntries(
      domains.map((d) => [d, turn.ctx.directory.specializationsOf(goal.topology, d)] as const),
    ),
    feedback,
  });
}

/**
 * A planner's answer came back: recorded as PlanProposed with what the checks found. A valid plan
 * is decomposed; an invalid one (or none) is asked again with its problems, and past the last
 * attempt the goal is given up with every attempt's reasons: rejected while nothing of it ran,
 * failed when earlier phases of a project did.
 */
function planned(f: PlanningFinished, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const goal = state.goals.get(f.goalId);
  const request = goal?.planning;
  if (!goal || !request || request.requestId !== f.requestId || GOAL_FINAL.has(goal.status)) return [];
  const top = topOf(goal, ctx);
  if (!top) return [];
  const problems = f.error ? [] : plannedTaskProblems(f.tasks, goal, request, state, ctx);
  const accepted = f.error === null && problems.length === 0;
  const turn = turnOf(state, goal.goalId, top, ctx);
  goalEvent(turn, "PlanProposed", {
    goalId: goal.goalId,
    requestId: request.requestId,
    phase: request.phase,
    attempt: request.attempt,
    planner: f.planner,
    usage: f.usage,
    tasks: f.tasks,
    error: f.error,
    accepted,
    problems,
  });
  if (accepted) decomposeInto(turn, request.phase, f.tasks, f.planner);
  else if (request.attempt < request.maxAttempts) {
    const planning = {
      ...DEFAULT_PLANNING,
      planner: "model" as const,
      model: request.model,
      maxAttempts: request.maxAttempts,
    };
    planRequest(turn, request.phase, request.attempt + 1, f.error ? [f.error] : problems, planning);
  }
  // Every attempt's problems, this one's too: the PlanProposed just decided added them to the goal.
  else givenUp(turn, [...goalOf(turn).planProblems, `no valid plan after ${request.maxAttempts} attempt(s)`]);
  return turn.draft.decisions;
}

/** What is wrong with a planner's tasks for a goal or phase: the checks an explicit DAG gets, and more. */
function plannedTaskProblems(
  tasks: readonly TaskSpec[],
  goal: GoalState,
  request: NonNullable<GoalState["planning"]>,
  state: HierarchyState,
  ctx: DecisionContext,
): string[] {
  const problems = taskGraphProblems(tasks);
  if (tasks.length > MAX_PLANNED_TASKS)
    problems.push(`the plan has ${tasks.length} tasks; at most ${MAX_PLANNED_TASKS} are allowed`);
  const allowed = new Set(request.domains);
  for (const t of tasks) {
    if (!allowed.has(t.domain))
      problems.push(
        `task "${t.id}": domain "${t.domain}" is not one of the goal's domains (${request.domains.join(", ")})`,
      );
    if (t.phase !== request.phase)
      problems.push(`task "${t.id}": phase ${t.phase ?? "none"} is not the phase planned (${request.phase ?? "none"})`);
    if (state.tasks.has(taskKey(goal.goalId, t.id)))
      problems.push(`task id "${t.id}" is already used by an earlier task of the goal`);
  }
  if (problems.length > 0) return problems;
  return routingProblems(tasks, goal.topology, ctx);
}

/** At most this many tasks in one planned goal or phase (as gateway/inputs.ts limits an explicit DAG). */
const MAX_PLANNED_TASKS = 1000;

/**
 * A goal given up because it could not be planned: GoalRejected (PLANNING_FAILED) while no task of
 * it exists; GoalFailed when a project's earlier phases already ran tasks.
 */
function givenUp(turn: Turn, reasons: string[]): void {
  const goal = goalOf(turn);
  const tasks = tasksOf(turn.draft.state, goal);
  const summary = `PLANNING_FAILED: ${reasons.join("; ")}`;
  const rejected = tasks.length === 0 && goal.submitCommandId !== null;
  if (rejected)
    goalEvent(turn, "GoalRejected", {
      goalId: goal.goalId,
      commandId: goal.submitCommandId!,
      code: "PLANNING_FAILED",
      reasons,
      violatedPolicies: [],
    });
  else
    goalEvent(turn, "GoalFailed", {
      goalId: goal.goalId,
      reason: summary,
      failedTaskIds: [],
      escalationId: null,
      tasksCompleted: tasks.filter((t) => t.status === "COMPLETED").length,
      tasksFailed: 0,
      totalCost: sumCosts(tasks.map((t) => t.cost)),
    });
  turn.draft.emit(
    outcomeNotice(
      { ...goal, domains: domainsReached(goal, turn.draft.state) },
      rejected ? "REJECTED" : "FAILED",
      summary,
      { code: "PLANNING_FAILED" },
      turn.actor,
    ),
  );
}

/** GoalDecomposed and TaskCreated for the tasks of a goal or phase, then release of what is ready. */
function decomposeInto(turn: Turn, phase: Phase | null, tasks: readonly TaskSpec[], planner: string): void {
  const goal = goalOf(turn);
  goalEvent(turn, "GoalDecomposed", { goalId: goal.goalId, planner, phase, tasks: [...tasks] });
  const maxAttempts = retryLimitsFor(turn.ctx, goal.topology).worker;
  for (const t of tasks)
    turn.draft.emit(
      decision(
        "TaskCreated",
        {
          goalId: goal.goalId,
          task: t,
          priority: t.priority ?? goal.priority,
          maxAttempts,
          parentTaskId: null,
          deadline: null,
        },
        turn.actor,
        taskRef(t.id),
      ),
    );
  const done = (id: string) => turn.draft.state.tasks.get(taskKey(goal.goalId, id))?.status === "COMPLETED";
  for (const t of tasks)
    if (t.dependsOn.every(done)) turn.draft.emit(assignToGovernor(turn, t, t.priority ?? goal.priority));
  // A project phase with nothing to do passes its gate at once.
  if (phase && tasks.length === 0 && gateOpens(goal, phase)) advance(turn, phase, null);
}

function assignToGovernor(turn: Turn, t: TaskSpec, priority: number): Decision {
  const goal = goalOf(turn);
  const governor = turn.ctx.directory.governorOf(goal.topology, t.domain);
  if (!governor) throw new Error(`no governor for domain ${t.domain} in ${goal.topology}: checked at submission`);
  return decision(
    "TaskAssigned",
    {
      goalId: goal.goalId,
      taskId: t.id,
      assigneeId: governor.agentId,
      assigneeTier: governor.tier,
      assignedBy: turn.top.agentId,
      attempt: 1,
      task: t,
      priority,
      timeoutMs: null,
    },
    turn.actor,
    taskRef(t.id),
  );
}

/** PhaseTransitioned into `phase`, the goal's snapshot as it enters it, then the phase's plan. */
function enterPhase(turn: Turn, phase: Phase, requestId: string | null): void {
  const goal = goalOf(turn);
  // A project entering its first phase (at submission) is not decomposed yet: by its own events it
  // is VALIDATED, though the state keeps every goal RUNNING from its submission on (state.ts newGoal).
  const first = goal.phase === null;
  goalEvent(turn, "PhaseTransitioned", {
    goalId: goal.goalId,
    fromPhase: goal.phase,
    toPhase: phase,
    requestId,
    phaseDurationMs: goal.phaseStartedAt ? turn.ctx.now.getTime() - goal.phaseStartedAt.getTime() : null,
  });
  snapshot(turn, first ? "VALIDATED" : undefined);
  decompose(turn, phase);
}

function gateIsAuto(goal: GoalState): boolean {
  return (goal.constraints[PHASE_GATE] ?? "auto") !== "manual";
}

/**
 * Whether `phase` is left without a request: always with the automatic gate, and after LAUNCH,
 * which no request can leave (the project completes when its tasks are done).
 */
function gateOpens(goal: GoalState, phase: Phase): boolean {
  return gateIsAuto(goal) || nextPhase(phase) === null;
}

/** Leaves `phase`: on to the next one, or, after LAUNCH, completes the project. */
function advance(turn: Turn, phase: Phase, requestId: string | null): void {
  const next = nextPhase(phase);
  if (!next) completion(turn);
  else enterPhase(turn, next, requestId);
}

function phaseTasks(state: HierarchyState, goal: GoalState): TaskState[] {
  return tasksOf(state, goal).filter((t) => goal.kind !== "PROJECT" || t.spec.phase === goal.phase);
}

/** After any task of a goal finished: release what became ready, then pass a gate or finish. */
function reconcile(
  e: { goalId: string; envelope: { eventId: string; tenantId: string } },
  state: HierarchyState,
  ctx: DecisionContext,
): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal || GOAL_FINAL.has(goal.status)) return [];
  const top = topOf(goal, ctx);
  if (!top) return [];
  const turn = turnOf(state, goal.goalId, top, ctx, e.envelope);
  const done = (id: string) => state.tasks.get(taskKey(goal.goalId, id))?.status === "COMPLETED";
  const tasks = tasksOf(state, goal);
  for (const t of tasks) {
    if (t.status === "PENDING" && t.governorId === null && t.spec.dependsOn.every(done))
      turn.draft.emit(assignToGovernor(turn, t.spec, t.priority));
  }
  const current = phaseTasks(state, goal);
  if (current.length === 0 || !current.every((t) => t.status === "COMPLETED")) {
    const completed = tasks.filter((t) => t.status === "COMPLETED").length;
    if (completed - goal.snapshotTasksCompleted >= SNAPSHOT_EVERY_COMPLETIONS) snapshot(turn);
  } else if (goal.kind === "GOAL") completion(turn);
  else if (goal.phase && gateOpens(goal, goal.phase) && goal.openEscalations.size === 0)
    advance(turn, goal.phase, null);
  return turn.draft.decisions;
}

/** GoalCompleted with every task's result and outputs gathered into one, its final snapshot, and the notice. */
function completion(turn: Turn): void {
  const goal = goalOf(turn);
  const tasks = tasksOf(turn.draft.state, goal).filter((t) => t.status === "COMPLETED");
  const outputs: Record<string, string> = {};
  for (const t of tasks) {
    outputs[t.spec.id] = t.result ?? "";
    for (const [k, v] of Object.entries(t.outputs)) outputs[`${t.spec.id}.${k}`] = v;
  }
  const phases = goal.kind === "PROJECT" ? ` across ${goal.phasesDone.length + 1} phases` : "";
  const durationMs = Math.max(0, turn.ctx.now.getTime() - goal.submittedAt.getTime());
  const totalCost = sumCosts(tasks.map((t) => t.cost));
  goalEvent(turn, "GoalCompleted", {
    goalId: goal.goalId,
    result: `${tasks.length} task(s) completed${phases}: ${tasks.map((t) => `${t.spec.id}: ${t.result ?? ""}`).join("; ")}`,
    outputs,
    tasksCompleted: tasks.length,
    durationMs,
    totalCost,
  });
  snapshot(turn);
  turn.draft.emit(
    outcomeNotice(
      { ...goal, domains: domainsReached(goal, turn.draft.state) },
      "COMPLETED",
      `${tasks.length} task(s) completed${phases} in ${durationMs} ms, cost ${totalCost}`,
      { tasksCompleted: String(tasks.length), durationMs: String(durationMs), totalCost },
      turn.actor,
    ),
  );
}

/**
 * GoalSnapshotTaken: the goal as of its latest version, taken when a project enters a phase, every
 * SNAPSHOT_EVERY_COMPLETIONS completions, and when a goal ends, so a reader can start from a
 * snapshot instead of the goal's first event.
 */
function snapshot(turn: Turn, status: GoalStatus = goalOf(turn).status): void {
  const goal = goalOf(turn);
  const tasks = tasksOf(turn.draft.state, goal);
  const count = (pred: (t: TaskState) => boolean) => tasks.filter(pred).length;
  const completed = count((t) => t.status === "COMPLETED");
  goalEvent(turn, "GoalSnapshotTaken", {
    goalId: goal.goalId,
    asOfVersion: goal.version,
    status,
    currentPhase: goal.phase,
    progress: tasks.length === 0 ? 0 : completed / tasks.length,
    tasksTotal: tasks.length,
    tasksCompleted: completed,
    tasksFailed: count((t) => t.status === "FAILED" && !t.lastFailure?.retryable),
    tasksInFlight: count((t) => t.status === "ASSIGNED" || t.status === "ACCEPTED" || t.status === "RUNNING"),
    openEscalations: goal.openEscalations.size,
    costSoFar: sumCosts(tasks.map((t) => t.cost)),
    state: JSON.stringify({
      format: "president/v1",
      goal: {
        ...goal,
        status,
        openEscalations: [...goal.openEscalations],
        escalations: [...goal.escalations],
        answeredCommands: [...goal.answeredCommands],
        reported: [...goal.reported],
      },
      tasks: tasks.map((t) => ({
        id: t.spec.id,
        status: t.status,
        attempt: t.attempt,
        governorId: t.governorId,
        mayorId: t.mayorId,
        workerId: t.workerId,
        cost: t.cost,
      })),
    }),
  });
}

// ---- phase gates ------------------------------------------------------------------------------

function requestTransition(cmd: RequestPhaseTransition, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const requestId = cmd.envelope.eventId;
  const goal = state.goals.get(cmd.goalId);
  if (goal?.answeredCommands.has(requestId) || state.rejectedCommands.has(requestId)) return [];
  const top = goal ? topOf(goal, ctx) : null;
  if (goal && !top) return [];
  const actor: Actor = top ? actorOf(top) : { id: "president", tier: "SYSTEM" };
  // Who may move a project on; an unknown project is refused below whoever asks.
  const security = goal
    ? checkIssuer("RequestPhaseTransition", cmd, goal.topology, domainsReached(goal, state), actor, ctx)
    : null;
  const reasons: string[] = [];
  let pending: string[] = [];
  let open: string[] = [];
  if (security?.verdict === "DENY") reasons.push(...security.reasons);
  else if (!goal) reasons.push(`no project with id "${cmd.goalId}"`);
  else if (goal.kind !== "PROJECT") reasons.push(`"${goal.goalId}" is a plain goal: only projects have phases`);
  else if (GOAL_FINAL.has(goal.status)) reasons.push(`the project is already ${goal.status.toLowerCase()}`);
  else if (goal.phase !== cmd.fromPhase)
    reasons.push(`the project is in ${goal.phase ?? "no phase"}, not ${cmd.fromPhase}`);
  else if (nextPhase(goal.phase) === null)
    reasons.push(`${goal.phase} is the last phase: the project completes when its tasks are done`);
  else if (nextPhase(goal.phase) !== cmd.toPhase)
    reasons.push(`phases run in order: after ${goal.phase} comes ${nextPhase(goal.phase)}, not ${cmd.toPhase}`);
  else {
    pending = phaseTasks(state, goal)
      .filter((t) => t.status !== "COMPLETED")
      .map((t) => t.spec.id);
    open = [...goal.openEscalations];
    if (pending.length > 0)
      reasons.push(`${pending.length} task(s) of ${goal.phase} are not done: ${pending.join(", ")}`);
    if (open.length > 0) reasons.push(`${open.length} escalation(s) are still open: ${open.join(", ")}`);
  }
  const evaluated = security?.decisions ?? [];
  if (reasons.length > 0 || !goal || !top) {
    return [
      ...evaluated,
      decision(
        "PhaseTransitionRejected",
        {
          goalId: cmd.goalId,
          requestId,
          currentPhase: goal?.phase ?? cmd.fromPhase,
          toPhase: cmd.toPhase,
          reasons,
          pendingTaskIds: pending,
          openEscalationIds: open,
        },
        actor,
        { type: "GOAL", id: cmd.goalId },
      ),
    ];
  }
  const turn = turnOf(state, goal.goalId, top, ctx, cmd.envelope);
  turn.draft.emit(...evaluated);
  advance(turn, goal.phase!, requestId);
  return turn.draft.decisions;
}

// ---- emergency stop ---------------------------------------------------------------------------

/**
 * StopGoal: GoalStopped, then a TaskCancelled (GOAL_STOPPED) for every open task, which tells the
 * tiers below to dispatch nothing more of it and the worker holding it to abort its execution.
 * Completed tasks keep their results. A stop of a goal that is already final (completed, failed,
 * stopped, rejected) or unknown here is answered with nothing: there is nothing left to stop, and
 * the read models already show why. Deciding the same command again is a no-op: GoalStopped
 * records it as answered (its causation) and makes the goal final.
 */
function stop(cmd: StopGoal, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const commandId = cmd.envelope.eventId;
  const goal = state.goals.get(cmd.goalId);
  if (!goal || goal.partial || goal.answeredCommands.has(commandId) || GOAL_FINAL.has(goal.status)) return [];
  // Refused already (its DENY is in the state): refused once.
  if (state.refused.has(commandId)) return [];
  const top = topOf(goal, ctx);
  if (!top) return [];
  const actor = actorOf(top);
  // Who may stop it: a refusal is the DENY evaluation alone (the schemas have no StopRejected).
  const security = checkIssuer("StopGoal", cmd, goal.topology, domainsReached(goal, state), actor, ctx);
  if (security.verdict === "DENY") return security.decisions;
  const open = tasksOf(state, goal).filter(isOpen);
  const turn = turnOf(state, goal.goalId, top, ctx, cmd.envelope);
  turn.draft.emit(...security.decisions);
  goalEvent(turn, "GoalStopped", {
    goalId: goal.goalId,
    reason: cmd.reason,
    requestedBy: cmd.envelope.actor.id,
    cancelledTaskIds: open.map((t) => t.spec.id),
  });
  for (const t of open)
    turn.draft.emit(
      decision(
        "TaskCancelled",
        {
          goalId: goal.goalId,
          taskId: t.spec.id,
          cause: "GOAL_STOPPED",
          reason: `emergency stop by ${cmd.envelope.actor.id}: ${cmd.reason}`,
          previousStatus: t.status,
          agentId: t.workerId,
        },
        actor,
        taskRef(t.spec.id),
      ),
    );
  turn.draft.emit(
    outcomeNotice(
      { ...goal, domains: domainsReached(goal, state) },
      "STOPPED",
      `emergency stop by ${cmd.envelope.actor.id}: ${cmd.reason}; ${open.length} open task(s) cancelled`,
      {
        requestedBy: cmd.envelope.actor.id,
        reason: cmd.reason,
        cancelledTaskIds: open.map((t) => t.spec.id).join(","),
      },
      actor,
    ),
  );
  return turn.draft.decisions;
}

// ---- failure ----------------------------------------------------------------------------------

/**
 * An escalation that reached the top. Without an ESCALATION policy routing it to SPLIT the goal
 * fails; GoalFailed's reason is the whole chain, earliest first: the workers' failures, each tier's
 * escalation, then this decision. An escalation of a goal already final is only closed. Under an
 * ESCALATION policy applying to the top (in effect when the escalation was raised), the consulted
 * versions are named in the EscalationResolved and a PolicyEvaluated records why.
 */
function escalated(
  e: Extract<TierInput, { type: "EscalationRaised" }>["value"],
  state: HierarchyState,
  ctx: DecisionContext,
): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal || !goal.openEscalations.has(e.escalationId)) return [];
  const top = topOf(goal, ctx);
  if (!top || e.toAgentId !== top.agentId) return [];
  const actor = actorOf(top);
  const task = e.taskId ? state.tasks.get(taskKey(goal.goalId, e.taskId)) : undefined;
  const final = GOAL_FINAL.has(goal.status);
  // The policies in effect when the escalation was raised, for the top's tier and the task's domain.
  const policy = final
    ? null
    : escalationPolicyAt(ctx.policies, e.envelope.occurredAt, top.tier, task?.spec.domain ?? null);
  const route = policy?.route(e.kind) ?? null;
  const routeReason = route
    ? `${cite(route.policy, "resolution")}: ${e.kind} is resolved by ${route.value}`
    : `no route for ${e.kind} at the top`;
  let refusal: string | null = null;
  if (policy && route?.value === "SPLIT") {
    const holder = task?.governorId ? ctx.directory.get(task.governorId) : undefined;
    refusal = !task
      ? "the escalation names no task"
      : splitParentOf(task)
        ? `task ${task.spec.id} is a part of task ${splitParentOf(task)}, and a part is not split again`
        : !ATTEMPT_FAILED.has(task.status)
          ? `task ${task.spec.id} is ${task.status.toLowerCase()}`
          : !holder
            ? `no governor or sub-master holds task ${task.spec.id}`
            : null;
    if (!refusal && task && holder) return splitAtTop(e, task, holder, policy, route.policy, routeReason, top, ctx);
  }
  const verdict = final
    ? `the goal is already ${goal.status.toLowerCase()}: nothing more to decide`
    : refusal
      ? `the task cannot be split (${refusal}): the goal fails and its open tasks are cancelled`
      : "no policy allows another attempt: the goal fails and its open tasks are cancelled";
  const turn = turnOf(state, goal.goalId, top, ctx, e.envelope);
  const notice = final
    ? null
    : goalFailure(
        turn,
        [...e.reasonChain, e.reason, `${top.name}: ${verdict}`].join(" -> "),
        e.escalationId,
        `goal failed: ${e.reason}`,
      );
  turn.draft.emit(
    escalationResolved(
      e,
      top,
      { outcome: "FAIL_GOAL", decision: verdict, consultedPolicies: policy ? policy.policies.map(refOf) : [] },
      ctx.now,
    ),
  );
  if (policy)
    turn.draft.emit(
      escalationEvaluated(
        goal.goalId,
        { type: "EscalationRaised", id: e.escalationId, agentId: e.fromAgentId },
        route?.policy ?? policy.policies[0]!,
        policy,
        [
          routeReason,
          refusal
            ? `task ${e.taskId} cannot be split: ${refusal}; the goal fails`
            : route?.value === "FAIL_GOAL"
              ? "the goal fails"
              : `the top cannot deliver the task again (its domain's tiers do): the goal fails`,
        ],
        actor,
      ),
    );
  if (notice) turn.draft.emit(notice);
  return turn.draft.decisions;
}

/**
 * A goal failed by the top: GoalFailed (the failed tasks, what completed, the cost so far), then a
 * TaskCancelled (GOAL_FAILED) for every open task, which tells the tiers below to let it go and the
 * worker holding it to abort. Returns the notice of the outcome, which the caller writes last.
 */
function goalFailure(turn: Turn, reason: string, escalationId: string | null, cancelReason: string): Decision {
  const goal = goalOf(turn);
  const tasks = tasksOf(turn.draft.state, goal);
  const failed = tasks.filter((t) => ATTEMPT_FAILED.has(t.status));
  const open = tasks.filter(isOpen).map((t) => ({ id: t.spec.id, status: t.status, workerId: t.workerId }));
  goalEvent(turn, "GoalFailed", {
    goalId: goal.goalId,
    reason,
    failedTaskIds: failed.map((t) => t.spec.id),
    escalationId,
    tasksCompleted: tasks.filter((t) => t.status === "COMPLETED").length,
    tasksFailed: failed.length,
    totalCost: sumCosts(tasks.map((t) => t.cost)),
  });
  for (const t of open)
    turn.draft.emit(
      decision(
        "TaskCancelled",
        {
          goalId: goal.goalId,
          taskId: t.id,
          cause: "GOAL_FAILED",
          reason: cancelReason,
          previousStatus: t.status,
          agentId: t.workerId,
        },
        turn.actor,
        taskRef(t.id),
      ),
    );
  return outcomeNotice(
    { ...goal, domains: domainsReached(goal, turn.draft.state) },
    "FAILED",
    reason,
    { ...(escalationId ? { escalationId } : {}), failedTaskIds: failed.map((t) => t.spec.id).join(",") },
    turn.actor,
  );
}

// ---- deadlines --------------------------------------------------------------------------------

/**
 * The top's watch over goal deadlines, at each tick of its clock (time-limits.ts): a running goal
 * past its at-risk moment gets one DEADLINE_AT_RISK escalation (to the operators); one past its
 * deadline fails (onMiss `fail`: GoalFailed naming the deadline, its open tasks cancelled, as any
 * failed goal's) or gets a second escalation and goes on (`warn`). A goal's deadline escalations
 * are closed when it ends. Only goals with a deadline are looked at (state.deadlines); what is
 * decided is in the log, so a tick decided again adds nothing.
 */
function watchDeadlines(state: HierarchyState, now: Date, ctx: DecisionContext): Decision[] {
  if (state.deadlines.size === 0) return [];
  const out: Decision[] = [];
  for (const goalId of [...state.deadlines].sort()) {
    const goal = state.goals.get(goalId);
    if (!goal?.deadline || goal.partial) continue;
    const top = topOf(goal, ctx);
    if (!top) continue;
    const turn = turnOf(state, goalId, top, ctx);
    deadlineDecisions(turn, goal.deadline, now);
    out.push(...turn.draft.decisions);
  }
  return out;
}

function deadlineDecisions(turn: Turn, deadline: Date, now: Date): void {
  const goal = goalOf(turn);
  const { top, ctx } = turn;
  const ids = deadlineEscalationIds(goal.goalId);
  // Every deadline escalation of the goal still open.
  const close = (outcome: "FAIL_GOAL" | "RESOLVED_WITH_GUIDANCE", verdict: string) => {
    for (const id of [ids.atRisk, ids.missed].filter((id) => goalOf(turn).openEscalations.has(id)))
      turn.draft.emit(
        escalationResolved(
          { escalationId: id, goalId: goal.goalId, taskId: null },
          top,
          { outcome, decision: verdict },
          ctx.now,
        ),
      );
  };
  if (GOAL_FINAL.has(goal.status))
    return close(
      goal.status === "FAILED" ? "FAIL_GOAL" : "RESOLVED_WITH_GUIDANCE",
      `the goal is ${goal.status.toLowerCase()}: its deadline is watched no more`,
    );
  const { settings } = deadlineSettingsOf(goal.constraints, timeLimitsFor(ctx, goal.topology).deadlines);
  const tasks = tasksOf(turn.draft.state, goal);
  const progress = `${tasks.filter((t) => t.status === "COMPLETED").length} of ${tasks.length} task(s) done`;
  const at = deadline.toISOString();
  const raise = (escalationId: string, severity: "WARNING" | "CRITICAL", reason: string) =>
    turn.draft.emit(
      escalationRaised({
        escalationId,
        goalId: goal.goalId,
        taskId: null,
        kind: "DEADLINE_AT_RISK",
        severity,
        from: top,
        // To the operators: no tier of the hierarchy can buy the goal more time.
        to: null,
        reason,
      }),
    );
  if (now.getTime() >= deadline.getTime()) {
    const late = `deadline ${at} passed with ${progress}`;
    if (settings.onMiss === "warn") {
      if (!goal.escalations.has(ids.missed)) raise(ids.missed, "CRITICAL", `${late}; onMiss is warn: the goal goes on`);
      return;
    }
    const reason = `${late}: ${top.name} fails the goal (onMiss fail)`;
    const escalationId = goal.escalations.has(ids.atRisk) ? ids.atRisk : null;
    const notice = goalFailure(turn, reason, escalationId, `goal failed: ${late}`);
    close("FAIL_GOAL", reason);
    turn.draft.emit(notice);
    return;
  }
  if (now.getTime() < atRiskAt(goal, deadline, settings).getTime() || goal.escalations.has(ids.atRisk)) return;
  const left = Math.max(0, deadline.getTime() - now.getTime());
  raise(
    ids.atRisk,
    "WARNING",
    `deadline ${at} is at risk: ${Math.round(settings.atRiskFraction * 100)}% of the time from submission has passed with ${progress}, ${left} ms left`,
  );
}

/**
 * SPLIT at the top: the same split a governor makes (escalation-policy.ts), decided by the top for
 * the domain tier holding the task (`holder`, a governor or sub-master): the parts are created and
 * assigned to it with the task taken back as a new attempt, so the holder hands the parts down,
 * never the task, and completes the task once every part completed. The goal goes on.
 */
function splitAtTop(
  e: Extract<TierInput, { type: "EscalationRaised" }>["value"],
  task: TaskState,
  holder: AgentInfo,
  policy: EscalationPolicy,
  deciding: EscalationPolicy["policies"][number],
  routeReason: string,
  top: AgentInfo,
  ctx: DecisionContext,
): Decision[] {
  const actor = actorOf(top);
  const parts = splitSpecs(task, policy.splitInto?.value ?? DEFAULT_SPLIT_INTO);
  const ids = parts.map((p) => p.id);
  return [
    escalationResolved(
      e,
      top,
      {
        outcome: "SPLIT",
        decision: `${top.name} splits task ${task.spec.id} into ${parts.length} parts (${ids.join(", ")}), run by ${holder.name}`,
        newTaskIds: ids,
        consultedPolicies: policy.policies.map(refOf),
      },
      ctx.now,
    ),
    escalationEvaluated(
      e.goalId,
      { type: "EscalationRaised", id: e.escalationId, agentId: e.fromAgentId },
      deciding,
      policy,
      [
        routeReason,
        `task ${task.spec.id} is split into ${parts.length} parts${policy.splitInto ? ` (${cite(policy.splitInto.policy, "splitInto")})` : ""}, run by ${holder.name}`,
      ],
      actor,
    ),
    ...splitDecisions(task, parts, holder, task.maxAttempts, top),
  ];
}
