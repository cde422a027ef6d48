/**
 * The governor (aamas) or sub-master (dgm) of a domain. A governor hands its domain's tasks to its
 * mayors, most urgent first, each to the mayor with the fewest open tasks that has workers of the
 * needed specialization; a sub-master has no mayors and dispatches straight to workers. Both report
 * finished work up and pass escalations they cannot settle to the top.
 */
import type {
  EscalationRaised,
  MessageTypeName,
  PolicyRef,
  ResourceDenied,
  TaskFailed,
  TaskTimedOut,
} from "../../schemas/generated/types.js";
import { servesTenant, type AgentInfo } from "./directory.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import {
  afterHeldTaskEvent,
  dispatchToWorkers,
  leastLoaded,
  MIDDLE_TIER_READS,
  policyEscalationId,
  refusedAssignment,
  waitingAt,
  type HolderRules,
} from "./dispatch.js";
import { answerContext, answerQuery, duplicateClaim } from "./context.js";
import { afterRecovery, reassignFromFailed } from "./reassign.js";
import { deliveryOf, retryLimitsFor } from "./limits.js";
import {
  cite,
  completeSplit,
  DEFAULT_SPLIT_INTO,
  escalationEvaluated,
  escalationPolicyAt,
  isSplit,
  limitsUnder,
  splitDecisions,
  splitParentOf,
  splitSpecs,
  type EscalationPolicy,
  type Resolution,
} from "./policies/escalation-policy.js";
import {
  deniedEscalationId,
  escalationKindOf,
  escalationRaised,
  escalationResolved,
  passedUp,
  REDELIVERED_KINDS,
  topFor,
} from "./escalation.js";
import { refOf } from "./policies/book.js";
import { resourceRequestsFor } from "./resources.js";
import { checkAssignment, type AccessCheck } from "./policies/security.js";
import { loadOf, type HierarchyState, type TaskState } from "./kernel/state.js";
import { taskKey } from "./kernel/keys.js";
import { ATTEMPT_FAILED } from "./kernel/status.js";
import { timedOutAttempts } from "./time-limits.js";

/**
 * Besides the middle tiers' reads, the answers to the budget requests it makes (resources.ts): a
 * task waits at its governor for its ResourceAllocated when a RESOURCE_ALLOCATION policy applies.
 */
const GOVERNOR_READS: ReadonlySet<MessageTypeName> = new Set([
  ...MIDDLE_TIER_READS,
  "ResourceRequested",
  "ResourceAllocated",
  "ResourceDenied",
]);

export const governor: TierDecider = {
  role: "governor",
  reads: GOVERNOR_READS,
  decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
    switch (input.type) {
      case "TaskAssigned": {
        const me = hosted(input.value.assigneeId, ctx);
        return me ? allocate(state, me, ctx, input.value.envelope.occurredAt) : [];
      }
      // A sub-master holds its workers' attempts: it rules on a second worker's claim (context.ts).
      case "TaskAccepted":
      case "TaskStarted":
        return duplicateClaim(input, state, ctx, (t) => t.governorId, hostedSubMaster);
      case "ContextRequested":
        return answerContext(input, state, ctx, hosted);
      case "QueryAsked":
        return answerQuery(input, state, ctx, hosted);
      case "TaskCompleted":
      case "TaskFailed": {
        const claim = duplicateClaim(input, state, ctx, (t) => t.governorId, hostedSubMaster);
        if (claim.length > 0) return claim;
        if (input.type === "TaskFailed") {
          const underPolicy = subMasterFailure(input, state, ctx);
          if (underPolicy) return underPolicy;
        }
        const done = input.type === "TaskCompleted" ? partCompleted(input.value, state, ctx) : [];
        return [...done, ...afterHeldTaskEvent(input, state, ctx, HOLDER_RULES)];
      }
      // A sub-master's own TaskTimedOut, read back: retried or escalated as a failed attempt is.
      case "TaskTimedOut":
        return subMasterFailure(input, state, ctx) ?? afterHeldTaskEvent(input, state, ctx, HOLDER_RULES);
      // Time passed: a sub-master times out attempts its workers held longer than their limit.
      case "ClockTicked":
        return timedOutAttempts(state, input.now, ctx, (t) => t.governorId, hostedSubMaster);
      case "TaskCancelled":
      case "TaskRetried":
        return afterHeldTaskEvent(input, state, ctx, HOLDER_RULES);
      case "EscalationRaised": {
        const me = input.value.toAgentId ? hosted(input.value.toAgentId, ctx) : null;
        return me ? resolveEscalation(input.value, state, me, ctx) : [];
      }
      // Only a sub-master dispatches to workers, so only it moves a failed worker's tasks.
      case "AgentFailed":
      case "AgentTerminated":
        return reassignFromFailed(
          state,
          input.value.agentId,
          ctx,
          (t) => t.governorId,
          hostedSubMaster,
          input.value.envelope.occurredAt,
        );
      case "AgentRecovered":
        return [
          ...afterRecovery(state, input.value.agentId, ctx, hostedSubMaster, input.value.envelope.occurredAt),
          ...allocateAbove(state, input.value.agentId, ctx, input.value.envelope.occurredAt),
        ];
      case "AgentRegistered":
        return input.value.tier === "WORKER"
          ? [
              ...afterRecovery(state, input.value.agentId, ctx, hostedSubMaster, input.value.envelope.occurredAt),
              ...allocateAbove(state, input.value.agentId, ctx, input.value.envelope.occurredAt),
            ]
          : [];
      case "ResourceAllocated": {
        const me = hosted(input.value.requesterId, ctx);
        return me ? allocate(state, me, ctx, input.value.envelope.occurredAt) : [];
      }
      case "ResourceDenied": {
        const me = hosted(input.value.requesterId, ctx);
        return me ? resourceDenied(input.value, state, me, ctx) : [];
      }
      default:
        return [];
    }
  },
};

const HOLDER_RULES: HolderRules = {
  holder: (t) => t.governorId,
  hosted,
  // A sub-master dispatches to workers itself, so retries are its call.
  dispatches: (me) => me.tier === "SUB_MASTER",
  handOut: allocate,
};

function hosted(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = ctx.directory.get(agentId);
  return agent && (agent.tier === "GOVERNOR" || agent.tier === "SUB_MASTER") && ctx.hosts(agentId) ? agent : null;
}

/**
 * A worker or mayor is back (recovered; a worker newly registered) below an aamas governor hosted here:
 * tasks that waited at the governor because no mayor had a worker of their specialization may go
 * down now. Without this they waited for the governor's next unrelated input (seen in the fault
 * suite: every worker of a specialization failed while its process was down, and a task handed to
 * the governor meanwhile stayed there after they recovered). A sub-master dispatches in afterRecovery.
 */
function allocateAbove(state: HierarchyState, agentId: string, ctx: DecisionContext, at: Date): Decision[] {
  let superiorId = ctx.directory.get(agentId)?.superiorId ?? null;
  for (let depth = 0; superiorId && depth < 4; depth++) {
    const agent = ctx.directory.get(superiorId);
    if (!agent) return [];
    if (agent.tier === "GOVERNOR") return ctx.hosts(agent.agentId) ? allocate(state, agent, ctx, at) : [];
    superiorId = agent.superiorId ?? null;
  }
  return [];
}

function hostedSubMaster(agentId: string, ctx: DecisionContext): AgentInfo | null {
  const agent = hosted(agentId, ctx);
  return agent?.tier === "SUB_MASTER" ? agent : null;
}

/**
 * Whether a waiting task may be handed down: yes when every resource it needs (its budget, and the
 * computational units and capacity a policy sets quotas for, resources.ts) is allocated, or none is
 * needed. A resource not asked for yet is asked for (into `requests`) and the task waits for the
 * answers; a denied task waits for the goal's end (resourceDenied escalated it). A task that was
 * split is never handed down: its parts are (escalation-policy.ts).
 */
function budgeted(
  task: TaskState,
  me: AgentInfo,
  state: HierarchyState,
  ctx: DecisionContext,
  requests: Decision[],
): boolean {
  if (isSplit(state, task)) return false;
  const goal = state.goals.get(task.goalId);
  let ready = true;
  for (const request of resourceRequestsFor(task, me, ctx.policies)) {
    const known = goal?.allocations.get((request.payload as { requestId: string }).requestId);
    if (!known) requests.push(request);
    if (known?.status !== "ALLOCATED") ready = false;
  }
  return ready;
}

/** The SECURITY check of the governor handing `task` to `mayor` (assignTo), by the versions in effect at `at`. */
function checkToMayor(task: TaskState, me: AgentInfo, mayor: AgentInfo, at: Date, ctx: DecisionContext): AccessCheck {
  return checkAssignment(
    {
      assigner: me,
      assigneeTier: mayor.tier,
      assigneeId: mayor.agentId,
      goalId: task.goalId,
      taskId: task.spec.id,
      domain: task.spec.domain,
      at,
    },
    ctx.policies,
  );
}

/**
 * Hands out what waits: a sub-master to its workers (dispatch.ts), a governor to its mayors. `at`
 * is the time of the input this follows from: the SECURITY policies in effect then judge each
 * assignment (assignTo); one they refuse is not made, the task is escalated to the top
 * (POLICY_VIOLATION) once per attempt and waits, as a refused dispatch to a worker does.
 */
function allocate(state: HierarchyState, me: AgentInfo, ctx: DecisionContext, at: Date = ctx.now): Decision[] {
  const requests: Decision[] = [];
  const ready = (t: TaskState) => budgeted(t, me, state, ctx, requests);
  if (me.tier === "SUB_MASTER") {
    const dispatched = dispatchToWorkers(state, me, ctx, ready, at);
    return [...requests, ...dispatched];
  }
  const mayors = ctx.directory.subordinates(me.agentId).filter((a) => a.tier === "MAYOR");
  const load = new Map(mayors.map((m) => [m.agentId, loadOf(state, m.agentId)]));
  // Which mayors have a worker for a specialization and the task's tenant, worked out once for each.
  const mayorsFor = new Map<string, AgentInfo[]>();
  const mayorsOf = (spec: string | null, tenantId: string | undefined) => {
    const key = `${spec ?? ""}\u0000${tenantId ?? ""}`;
    let fit = mayorsFor.get(key);
    if (!fit)
      mayorsFor.set(
        key,
        (fit = mayors.filter((m) =>
          ctx.directory.workersUnder(m.agentId, spec).some((w) => servesTenant(w, tenantId)),
        )),
      );
    return fit;
  };
  const out: Decision[] = [];
  for (const task of waitingAt(state, me, (t) => t.mayorId)) {
    // Refused once already: it waits for the top's answer, and is not judged again.
    if (state.goals.get(task.goalId)?.escalations.has(policyEscalationId(task, me))) continue;
    if (!ready(task)) continue;
    const fitting = mayorsOf(task.spec.specialization, state.goals.get(task.goalId)?.tenantId);
    if (fitting.length === 0) continue;
    const mayor = leastLoaded(fitting, (m) => load.get(m.agentId)!);
    const security = checkToMayor(task, me, mayor, at, ctx);
    if (security.verdict === "DENY") {
      out.push(...refusedAssignment(task, me, security, ctx));
      continue;
    }
    load.set(mayor.agentId, load.get(mayor.agentId)! + 1);
    out.push(
      ...security.decisions,
      decision(
        "TaskAssigned",
        {
          goalId: task.goalId,
          taskId: task.spec.id,
          assigneeId: mayor.agentId,
          assigneeTier: "MAYOR",
          assignedBy: me.agentId,
          attempt: task.attempt,
          task: task.spec,
          priority: task.priority,
          timeoutMs: null,
        },
        { id: me.agentId, tier: me.tier },
        { type: "TASK", id: task.spec.id },
      ),
    );
  }
  return [...requests, ...out];
}

/**
 * A task's budget was denied: it cannot be handed down, so the governor escalates to the top
 * (RESOURCE_DENIED, the denial's reasons in the reason), which fails the goal (president.ts).
 */
function resourceDenied(e: ResourceDenied, state: HierarchyState, me: AgentInfo, ctx: DecisionContext): Decision[] {
  if (!e.goalId || !e.taskId) return [];
  const goal = state.goals.get(e.goalId);
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  const escalationId = deniedEscalationId(e.goalId, e.taskId, e.requestId, me);
  if (!goal || !task || goal.escalations.has(escalationId) || task.governorId !== me.agentId) return [];
  if (task.status === "CANCELLED" || task.status === "COMPLETED") return [];
  return [
    escalationRaised({
      escalationId,
      goalId: e.goalId,
      taskId: e.taskId,
      kind: "RESOURCE_DENIED",
      from: me,
      to: topFor(me, ctx.directory),
      reason: `${me.name} cannot dispatch task ${e.taskId}: its budget of ${e.requestedAmount} was denied: ${e.reasons.join("; ")}`,
    }),
  ];
}

/**
 * An escalation that reached this governor (from a mayor). Without an ESCALATION policy: deliver
 * the task again in the domain while the topology allows (redeliver), else pass it to the top
 * (passUp). Under a policy (escalation-policy.ts), its route and limits decide, and a
 * PolicyEvaluated records the decision with the policy version in effect when it was raised.
 */
function resolveEscalation(
  e: EscalationRaised,
  state: HierarchyState,
  me: AgentInfo,
  ctx: DecisionContext,
): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
  const at = e.envelope.occurredAt;
  const policy = escalationPolicyAt(ctx.policies, at, me.tier, task?.spec.domain ?? me.domain);
  if (!policy) return redeliver(e, state, me, ctx, defaultTerms(task, me, ctx)) ?? passUp(e, state, me, ctx);
  const route = policy.route(e.kind);
  const resolution: Resolution | null = route?.value ?? (REDELIVERED_KINDS.has(e.kind) ? "RETRY_ELSEWHERE" : null);
  const domain = limitsUnder(policy, ctx, me.topology).domain;
  // Deliveries are counted in the mayors' attempts per delivery, as the mayors' policy sets them.
  const mayorPolicy = escalationPolicyAt(ctx.policies, at, "MAYOR", task?.spec.domain ?? me.domain);
  const perDelivery = mayorPolicy?.workerRetries?.value ?? task?.maxAttempts ?? 1;
  const consulted = policy.policies.map(refOf);
  const actor = { id: me.agentId, tier: me.tier };
  const subject = { type: "EscalationRaised", id: e.escalationId, agentId: e.fromAgentId };
  const routeReason = route
    ? `${cite(route.policy, "resolution")}: ${e.kind} is resolved by ${route.value}`
    : `no route for ${e.kind}: the built-in ${resolution ?? "escalation to the top"}`;
  const evaluated = (
    reasons: string[],
    deciding = route?.policy ?? policy.domainRetries?.policy ?? policy.policies[0]!,
  ) => escalationEvaluated(e.goalId, subject, deciding, policy, reasons, actor);

  if (resolution === "SPLIT" && task) {
    const refusal = splitRefusal(task, me);
    if (!refusal) {
      const parts = splitSpecs(task, policy.splitInto?.value ?? DEFAULT_SPLIT_INTO);
      return [
        escalationResolved(
          e,
          me,
          {
            outcome: "SPLIT",
            decision: `${me.name} splits task ${task.spec.id} into ${parts.length} parts (${parts.map((p) => p.id).join(", ")}) and runs them in ${me.domain}`,
            newTaskIds: parts.map((p) => p.id),
            consultedPolicies: consulted,
          },
          ctx.now,
        ),
        evaluated([
          routeReason,
          `task ${task.spec.id} is split into ${parts.length} parts${policy.splitInto ? ` (${cite(policy.splitInto.policy, "splitInto")})` : ""}`,
        ]),
        ...splitDecisions(task, parts, me, perDelivery),
      ];
    }
    return [
      ...passUp(e, state, me, ctx, { why: `: ${refusal}`, consulted }),
      evaluated([routeReason, `task ${task.spec.id} cannot be split: ${refusal}; the escalation goes to the top`]),
    ];
  }
  if (resolution === "RETRY_ELSEWHERE" || resolution === "REASSIGN") {
    const terms: DeliveryTerms = {
      deliveries: domain,
      perDelivery,
      othersOnly: resolution === "REASSIGN",
      anyFailure: route !== null,
      consulted,
    };
    const again = redeliver(e, state, me, ctx, terms);
    const limit = policy.domainRetries
      ? `${cite(policy.domainRetries.policy, "domainRetries")}: ${domain} deliveries in ${me.domain}`
      : `the topology's ${domain} deliveries in ${me.domain}`;
    // Redelivered, or (a SECURITY policy refused the mayor) passed up with that refusal.
    if (again)
      return again.length === 0 || again.some((d) => d.type === "EscalationRaised")
        ? again
        : [
            ...again,
            evaluated([routeReason, limit, `delivery ${deliveryOf(task!.attempt, perDelivery) + 1} is allowed`]),
          ];
    return [
      ...passUp(e, state, me, ctx, { consulted, perDelivery, deliveries: domain }),
      evaluated(
        [routeReason, limit, "no delivery is left (or no mayor fits): the escalation goes to the top"],
        policy.domainRetries?.policy ?? route?.policy,
      ),
    ];
  }
  // FAIL_GOAL, or a kind the policy does not route and the governor cannot settle: to the top.
  return [
    ...passUp(e, state, me, ctx, {
      consulted,
      why: resolution === "FAIL_GOAL" ? `: ${cite(route!.policy, "resolution")} asks that the goal fail` : undefined,
    }),
    evaluated([
      routeReason,
      resolution === "FAIL_GOAL"
        ? "no further delivery: the top is asked to fail the goal"
        : "the escalation goes to the top",
    ]),
  ];
}

/** Why `task` cannot be split by `me`, or null when it can. */
function splitRefusal(task: TaskState, me: AgentInfo): string | null {
  if (splitParentOf(task)) return `it is a part of task ${splitParentOf(task)}, and a part is not split again`;
  if (task.governorId !== me.agentId) return `${me.name} does not hold it`;
  if (!ATTEMPT_FAILED.has(task.status)) return `it is ${task.status.toLowerCase()}`;
  return null;
}

/** How the governor may deliver a task again. */
interface DeliveryTerms {
  deliveries: number;
  perDelivery: number;
  /** Only to a mayor other than the one that escalated (REASSIGN). */
  othersOnly: boolean;
  /** A failure that cannot be retried is delivered again too (a policy routed it). */
  anyFailure: boolean;
  consulted: PolicyRef[];
}

function defaultTerms(task: TaskState | undefined, me: AgentInfo, ctx: DecisionContext): DeliveryTerms {
  return {
    deliveries: retryLimitsFor(ctx, me.topology).domain,
    perDelivery: task?.maxAttempts ?? 1,
    othersOnly: false,
    anyFailure: false,
    consulted: [],
  };
}

/**
 * A governor's answer to its mayor running out of attempts: while the deliveries allowed in the
 * domain (the topology's `retries.domain`, or an ESCALATION policy's `domainRetries`) allow another
 * delivery of the task, it dispatches the task again as the first attempt of the next delivery,
 * to another mayor with fitting workers when it has one, and closes the escalation with that
 * decision. Null when it cannot: the escalation then goes up (passUp). A failure that cannot be
 * retried (unless a policy routes it here), a task no longer failed (cancelled by a stop) and a
 * sub-master's escalation go up.
 */
function redeliver(
  e: EscalationRaised,
  state: HierarchyState,
  me: AgentInfo,
  ctx: DecisionContext,
  terms: DeliveryTerms,
): Decision[] | null {
  if (me.tier !== "GOVERNOR" || !e.taskId) return null;
  if (!REDELIVERED_KINDS.has(e.kind) && !(terms.anyFailure && e.kind === "TASK_FAILURE")) return null;
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  if (!task || !ATTEMPT_FAILED.has(task.status) || !task.lastFailure || task.governorId !== me.agentId) return null;
  if (!task.lastFailure.retryable && !terms.anyFailure) return null;
  const deliveries = terms.deliveries;
  const delivery = deliveryOf(task.attempt, terms.perDelivery);
  if (delivery >= deliveries) return null;
  const mayors = ctx.directory
    .subordinates(me.agentId)
    .filter((m) => m.tier === "MAYOR" && ctx.directory.workersUnder(m.agentId, task.spec.specialization).length > 0);
  const others = mayors.filter((m) => m.agentId !== e.fromAgentId);
  const candidates = others.length > 0 || terms.othersOnly ? others : mayors;
  if (candidates.length === 0) return null;
  const mayor = leastLoaded(candidates, (m) => loadOf(state, m.agentId));
  // Handing it to a mayor again is an assignment like the first: a SECURITY policy may refuse it
  // (by the versions in effect when the escalation was raised); then the escalation goes up.
  const security = checkToMayor(task, me, mayor, e.envelope.occurredAt, ctx);
  if (security.verdict === "DENY")
    return [
      ...security.decisions,
      ...passUp(e, state, me, ctx, {
        why: `: ${me.name} may not hand it to a mayor again: ${security.reasons.join("; ")}`,
        consulted: terms.consulted,
      }),
    ];
  // The first attempt of the next delivery (after a failure that ended a delivery early too).
  const attempt = Math.max(task.attempt, delivery * terms.perDelivery) + 1;
  const actor = { id: me.agentId, tier: me.tier };
  const ref = { type: "TASK" as const, id: e.taskId };
  return [
    ...security.decisions,
    escalationResolved(
      e,
      me,
      {
        outcome: mayor.agentId === e.fromAgentId ? "RETRY_ELSEWHERE" : "REASSIGN",
        decision: `delivery ${delivery + 1} of ${deliveries} in ${me.domain}: ${me.name} dispatches the task again to ${mayor.name} as attempt ${attempt}`,
        reassignedTo: mayor.agentId,
        consultedPolicies: terms.consulted,
      },
      ctx.now,
    ),
    decision(
      "TaskAssigned",
      {
        goalId: e.goalId,
        taskId: e.taskId,
        assigneeId: mayor.agentId,
        assigneeTier: "MAYOR",
        assignedBy: me.agentId,
        attempt,
        task: task.spec,
        priority: task.priority,
        timeoutMs: null,
      },
      actor,
      ref,
    ),
  ];
}

/** What passUp says, when a policy decided it. */
interface PassUpNote {
  why?: string;
  consulted?: PolicyRef[];
  perDelivery?: number;
  deliveries?: number;
}

/** An escalation the governor (or sub-master) does not settle goes on to the top. */
function passUp(
  e: EscalationRaised,
  state: HierarchyState,
  me: AgentInfo,
  ctx: DecisionContext,
  note: PassUpNote = {},
): Decision[] {
  const goal = state.goals.get(e.goalId);
  if (!goal?.openEscalations.has(e.escalationId)) return [];
  const top = topFor(me, ctx.directory);
  const task = e.taskId ? state.tasks.get(taskKey(e.goalId, e.taskId)) : undefined;
  const why =
    note.why ??
    (task?.status === "CANCELLED"
      ? ": the task was cancelled"
      : !task || !ATTEMPT_FAILED.has(task.status)
        ? ""
        : task.lastFailure?.retryable
          ? `: ${deliveryOf(task.attempt, note.perDelivery ?? task.maxAttempts)} of ${note.deliveries ?? retryLimitsFor(ctx, me.topology).domain} deliveries in ${me.domain} failed`
          : ": the failure cannot be retried");
  return passedUp(e, me, top, `${me.name} cannot settle it${why}`, note.consulted ?? [], ctx.now);
}

// ---- the sub-master under an ESCALATION policy, and splits ------------------------------------

/**
 * A worker's failed attempt at a sub-master (dgm), under an ESCALATION policy: its `workerRetries`
 * and `domainRetries` replace the task's and the topology's limits; when the sub-master would
 * escalate to the master, a SPLIT route splits the task instead and a FAIL_GOAL route leaves out
 * further deliveries. Null without a policy (or when this host is no sub-master holding the task):
 * the shared handling applies unchanged.
 */
function subMasterFailure(
  input: { type: "TaskFailed"; value: TaskFailed } | { type: "TaskTimedOut"; value: TaskTimedOut },
  state: HierarchyState,
  ctx: DecisionContext,
): Decision[] | null {
  const e = input.value;
  const task = state.tasks.get(taskKey(e.goalId, e.taskId));
  const me = task?.governorId ? hostedSubMaster(task.governorId, ctx) : null;
  if (!task || !me || !ATTEMPT_FAILED.has(task.status) || !task.lastFailure) return null;
  const policy = escalationPolicyAt(ctx.policies, e.envelope.occurredAt, me.tier, task.spec.domain);
  if (!policy) return null;
  const kind = escalationKindOf(task.lastFailure);
  const route = policy.route(kind);
  const limits = limitsUnder(policy, ctx, me.topology);
  const perDelivery = policy.workerRetries?.value ?? task.maxAttempts;
  // FAIL_GOAL: no delivery after the current one.
  const deliveries = route?.value === "FAIL_GOAL" ? 1 : limits.domain;
  const decisions = afterHeldTaskEvent(input, state, ctx, HOLDER_RULES, { perDelivery, deliveries });
  const raised = decisions.findIndex((d) => d.type === "EscalationRaised");
  if (raised < 0) return decisions;
  const actor = { id: me.agentId, tier: me.tier };
  const subject = { type: input.type, id: `${e.goalId}/${e.taskId}#${e.attempt}`, agentId: e.agentId };
  const reasons = limitReasons(policy, perDelivery, deliveries, me);
  if (route?.value === "SPLIT" && !splitParentOf(task)) {
    const parts = splitSpecs(task, policy.splitInto?.value ?? DEFAULT_SPLIT_INTO);
    return [
      ...decisions.slice(0, raised),
      escalationEvaluated(
        e.goalId,
        subject,
        route.policy,
        policy,
        [
          `${cite(route.policy, "resolution")}: ${kind} is resolved by SPLIT`,
          ...reasons,
          `task ${task.spec.id} is split into ${parts.length} parts (${parts.map((p) => p.id).join(", ")}) instead of escalating to the master`,
        ],
        actor,
      ),
      ...splitDecisions(task, parts, me, perDelivery),
      ...decisions.slice(raised + 1),
    ];
  }
  const deciding = route?.policy ?? policy.domainRetries?.policy ?? policy.workerRetries?.policy ?? policy.policies[0]!;
  const routeReason = route
    ? `${cite(route.policy, "resolution")}: ${kind} is resolved by ${route.value}${route.value === "SPLIT" ? ", but a part is not split again" : ""}`
    : `no route for ${kind}: escalation to the master`;
  return [...decisions, escalationEvaluated(e.goalId, subject, deciding, policy, [routeReason, ...reasons], actor)];
}

function limitReasons(policy: EscalationPolicy, perDelivery: number, deliveries: number, me: AgentInfo): string[] {
  const out: string[] = [];
  if (policy.workerRetries)
    out.push(`${cite(policy.workerRetries.policy, "workerRetries")}: ${perDelivery} attempts per delivery`);
  if (policy.domainRetries)
    out.push(`${cite(policy.domainRetries.policy, "domainRetries")}: ${deliveries} deliveries in ${me.domain}`);
  return out;
}

/** A part of a split completed: its holder may complete the split task (escalation-policy.ts). */
function partCompleted(e: { goalId: string; taskId: string }, state: HierarchyState, ctx: DecisionContext): Decision[] {
  const part = state.tasks.get(taskKey(e.goalId, e.taskId));
  const parentId = part ? splitParentOf(part) : null;
  const parent = parentId ? state.tasks.get(taskKey(e.goalId, parentId)) : undefined;
  const me = parent?.governorId ? hosted(parent.governorId, ctx) : null;
  return me ? completeSplit(state, me, e.goalId, e.taskId) : [];
}
