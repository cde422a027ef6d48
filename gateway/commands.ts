/**
 * The gateway's write side, shared by GraphQL mutations and REST: check the caller, parse the
 * input (gateway/inputs.ts), write one command through producers/commands.ts, and optionally wait
 * until the read model shows its effect so the client can read its own write.
 *
 * The gateway writes only commands (and an agent's own task reports); it never writes events of
 * the hierarchy or the read models.
 *
 * Tenancy (processors/domain/kernel/tenancy.ts, auth.ts): a tenant's admin defines policies for its tenant
 * and amends only those; it registers and scales only its tenant's agents. The platform admin does
 * the same for what is platform-wide. What the caller cannot see answers 404 (nothing about another
 * tenant's policies or agents leaks); what it sees but may not change answers 403. A refused
 * command is never written. Submissions are held to the tenant's plan (plans.ts).
 */
import {
  amendPolicy,
  definePolicy,
  registerAgent,
  reportTaskOutcome,
  requestPhaseTransition,
  scaleAgents,
  stopGoal,
  submitGoal,
} from "../producers/commands.js";
import type { EventWriter, SentMessage } from "../producers/writer.js";
import { ATTEMPT_OVER } from "../processors/domain/kernel/status.js";
import type { AgentDoc } from "../projections/mongo/state-store.js";
import { mayChange, maySee, ownerFor, require, type Principal } from "./auth.js";
import { forbidden, GatewayError, invalid, notFound } from "./errors.js";
import {
  parseAmendPolicy,
  parseDefinePolicy,
  parseGoal,
  parsePhaseTransition,
  parseRegisterAgent,
  parseScale,
  parseStop,
  parseTaskResult,
} from "./inputs.js";
import { TenantPlans } from "./plans.js";
import type { ReadSide } from "./read-side.js";

export interface CommandReceipt {
  commandId: string;
  commandType: string;
  accepted: boolean;
  aggregateId: string;
  projected: boolean;
  outcome: string | null;
}

export interface WriteOptions {
  waitForProjection?: boolean;
  /** Upper bound of the wait; the receipt says projected: false when it runs out. */
  waitMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns an outcome or the time runs out. */
async function waitFor(check: () => Promise<string | null>, ms: number): Promise<string | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    const outcome = await check();
    if (outcome !== null || Date.now() >= deadline) return outcome;
    await sleep(100);
  }
}

function receipt(sent: SentMessage, aggregateId: string, outcome: string | null, waited: boolean): CommandReceipt {
  return {
    commandId: sent.envelope.eventId,
    commandType: sent.type,
    accepted: true,
    aggregateId,
    projected: waited && outcome !== null,
    outcome,
  };
}

const who = (p: Principal) => ({ tenantId: p.tenantId, userId: p.subject });

export class Commands {
  constructor(
    private readonly writer: EventWriter,
    private readonly read: ReadSide,
    private readonly defaultWaitMs = 10_000,
    private readonly plans: TenantPlans = new TenantPlans(),
  ) {}

  /** Refuses a submission the tenant's plan does not allow: too many tasks, or too many goals running. */
  private async withinPlan(p: Principal, tasks: number): Promise<void> {
    const plan = this.plans.of(p.tenantId);
    if (tasks > plan.maxTasksPerGoal)
      throw new GatewayError(
        "FORBIDDEN",
        `tasks: ${tasks} tasks is more than plan ${plan.plan} allows in one goal (maxTasksPerGoal ${plan.maxTasksPerGoal}); split the goal or ask for a larger plan`,
        "tasks",
      );
    const running = await this.read.runningGoals(p.tenantId);
    if (running >= plan.maxConcurrentGoals)
      throw new GatewayError(
        "RATE_LIMITED",
        `tenant ${p.tenantId} has ${running} goals running, the most plan ${plan.plan} allows (maxConcurrentGoals ${plan.maxConcurrentGoals}); submit again when one ends`,
      );
  }

  private wait(options: WriteOptions): number | null {
    return options.waitForProjection ? (options.waitMs ?? this.defaultWaitMs) : null;
  }

  /** Goal status once the read model has it: "RUNNING", "REJECTED: reason", ... */
  private goalOutcome(tenantId: string, goalId: string, unless?: string) {
    return async () => {
      const g = await this.read.goal(tenantId, goalId);
      if (!g?.status || g.status === unless) return null;
      return g.failure ? `${g.status}: ${g.failure.reason}` : g.status;
    };
  }

  async submitGoal(
    principal: Principal | null,
    raw: unknown,
    kind: "GOAL" | "PROJECT",
    options: WriteOptions = {},
  ): Promise<CommandReceipt> {
    const p = require(principal, "submit");
    const request = parseGoal(raw, kind);
    if (request.goalId && (await this.read.goal(p.tenantId, request.goalId)))
      throw invalid("goalId", `"${request.goalId}" is already taken; leave goalId out to get a fresh one`);
    await this.withinPlan(p, request.tasks?.length ?? 0);
    const { goalId, command } = await submitGoal(this.writer, who(p), request);
    const ms = this.wait(options);
    const outcome = ms === null ? null : await waitFor(this.goalOutcome(p.tenantId, goalId), ms);
    return receipt(command, goalId, outcome, ms !== null);
  }

  async requestPhaseTransition(
    principal: Principal | null,
    raw: unknown,
    options: WriteOptions = {},
  ): Promise<CommandReceipt> {
    const p = require(principal, "steer");
    const t = parsePhaseTransition(raw);
    const goal = await this.read.goal(p.tenantId, t.goalId);
    if (!goal) throw notFound(`project "${t.goalId}"`);
    if (goal.kind !== "PROJECT") throw invalid("goalId", `"${t.goalId}" is a plain goal: only projects have phases`);
    const sent = await requestPhaseTransition(this.writer, who(p), t.goalId, t.fromPhase, t.toPhase, t.justification);
    const ms = this.wait(options);
    const outcome =
      ms === null
        ? null
        : await waitFor(async () => {
            const g = await this.read.goal(p.tenantId, t.goalId);
            return g && g.currentPhase !== t.fromPhase ? `${g.currentPhase}` : null;
          }, ms);
    return receipt(sent, t.goalId, outcome, ms !== null);
  }

  async emergencyStop(principal: Principal | null, raw: unknown, options: WriteOptions = {}): Promise<CommandReceipt> {
    const p = require(principal, "steer");
    const s = parseStop(raw);
    if (!(await this.read.goal(p.tenantId, s.goalId))) throw notFound(`goal "${s.goalId}"`);
    const sent = await stopGoal(this.writer, who(p), s.goalId, s.reason);
    const ms = this.wait(options);
    const outcome =
      ms === null
        ? null
        : await waitFor(async () => {
            const g = await this.read.goal(p.tenantId, s.goalId);
            return g && ["STOPPED", "COMPLETED", "FAILED", "REJECTED"].includes(g.status ?? "") ? g.status : null;
          }, ms);
    return receipt(sent, s.goalId, outcome, ms !== null);
  }

  async scaleAgents(principal: Principal | null, raw: unknown): Promise<CommandReceipt> {
    const p = require(principal, "govern");
    const request = parseScale(raw);
    const pool = `${request.topology}/${request.tier}/${request.domain ?? "*"}/${request.specialization ?? "*"}`;
    // The scaler counts, starts and retires every live agent of the pool: the caller must own them all.
    const members = (await this.read.agents({ tier: request.tier, topology: request.topology })).filter(
      (a) =>
        a.status !== "TERMINATED" &&
        (!request.domain || a.domain === request.domain) &&
        (!request.specialization || a.specialization === request.specialization),
    );
    const foreign = members.filter((a) => !mayChange(p, a.tenantId));
    if (foreign.length > 0) {
      if (foreign.every((a) => !maySee(p, a.tenantId))) throw notFound(`agent pool "${pool}"`);
      const named = foreign
        .filter((a) => maySee(p, a.tenantId))
        .slice(0, 3)
        .map((a) => a._id);
      throw forbidden(
        ownerFor(p) === null
          ? `pool "${pool}" holds tenants' agents (${named.join(", ")}); the platform admin scales only platform-wide pools`
          : `pool "${pool}" holds agents that are not tenant ${p.tenantId}'s (${named.join(", ")}); a tenant admin scales only pools of its own agents`,
      );
    }
    const sent = await scaleAgents(this.writer, who(p), request);
    return receipt(sent, sent.envelope.aggregate.id, null, false);
  }

  async definePolicy(principal: Principal | null, raw: unknown, options: WriteOptions = {}): Promise<CommandReceipt> {
    const p = require(principal, "govern");
    const policy = parseDefinePolicy(raw);
    // Policy ids are one namespace: the engine would refuse a taken one, so it is refused here.
    const existing = (await this.read.policies({})).find((x) => x.policyId === policy.policyId);
    if (existing)
      throw invalid(
        "policyId",
        maySee(p, existing.tenantId)
          ? `policy "${policy.policyId}" already exists; change it with amendPolicy`
          : `"${policy.policyId}" is taken; choose another policy id`,
      );
    const sent = await definePolicy(this.writer, who(p), policy);
    return receipt(
      sent,
      policy.policyId,
      await this.policyOutcome(policy.policyId, 1, options),
      !!options.waitForProjection,
    );
  }

  async amendPolicy(principal: Principal | null, raw: unknown, options: WriteOptions = {}): Promise<CommandReceipt> {
    const p = require(principal, "govern");
    const amendment = parseAmendPolicy(raw);
    // A policy the read model does not show yet (just defined) is left to the policy engine, which
    // refuses an amendment of another tenant's policy too (processors/domain/policy.ts).
    const policy = (await this.read.policies({})).find((x) => x.policyId === amendment.policyId);
    if (policy && !maySee(p, policy.tenantId)) throw notFound(`policy "${amendment.policyId}"`);
    if (policy && !mayChange(p, policy.tenantId))
      throw forbidden(
        policy.tenantId
          ? `policy "${amendment.policyId}" belongs to tenant ${policy.tenantId}; only that tenant's admin amends it`
          : `policy "${amendment.policyId}" is platform-wide; only a platform admin (role platform-admin) amends it`,
      );
    const sent = await amendPolicy(this.writer, who(p), amendment);
    return receipt(
      sent,
      amendment.policyId,
      await this.policyOutcome(amendment.policyId, amendment.expectedVersion + 1, options),
      !!options.waitForProjection,
    );
  }

  private async policyOutcome(policyId: string, version: number, options: WriteOptions): Promise<string | null> {
    const ms = this.wait(options);
    if (ms === null) return null;
    return waitFor(async () => {
      const [policy] = (await this.read.policies({})).filter((x) => x.policyId === policyId);
      return policy && policy.currentVersion >= version ? `version ${policy.currentVersion}` : null;
    }, ms);
  }

  async registerAgent(principal: Principal | null, raw: unknown, options: WriteOptions = {}): Promise<CommandReceipt> {
    const p = require(principal, "govern");
    const agent = parseRegisterAgent(raw);
    await this.mayRegister(p, agent.agentId, agent.superiorId);
    const sent = await registerAgent(this.writer, who(p), agent);
    const ms = this.wait(options);
    const outcome =
      ms === null
        ? null
        : await waitFor(async () => ((await this.read.agent(agent.agentId)) ? "REGISTERED" : null), ms);
    return receipt(sent, agent.agentId, outcome, ms !== null);
  }

  /**
   * An agent id belongs to whoever registered it first: the caller may register it again only when
   * it is its own. Its superior must be an agent the caller sees (its own or a platform-wide one).
   */
  private async mayRegister(p: Principal, agentId: string, superiorId: string | null): Promise<void> {
    const existing: AgentDoc | null = await this.read.agent(agentId);
    if (existing && !mayChange(p, existing.tenantId))
      throw invalid("agentId", `"${agentId}" is taken; choose another agent id`);
    if (superiorId) {
      const superior = await this.read.agent(superiorId);
      if (!superior || !maySee(p, superior.tenantId)) throw notFound(`superior agent "${superiorId}"`);
    }
  }

  /**
   * An external agent's result. Only an agent token may report, only for a task whose current
   * attempt it holds as the worker, and only while that attempt is open.
   */
  async reportTaskResult(principal: Principal | null, raw: unknown): Promise<CommandReceipt> {
    const p = require(principal, "report");
    const r = parseTaskResult(raw);
    const agentId = p.agentId;
    if (!agentId) throw forbidden("only an agent token (role agent, with an agent claim) may report task results");
    const task = await this.read.task(p.tenantId, r.goalId, r.taskId);
    if (!task) throw notFound(`task "${r.taskId}" of goal "${r.goalId}"`);
    if (task.assignees.WORKER !== agentId)
      throw forbidden(`task "${r.taskId}" is not assigned to agent ${agentId}; an agent reports only on its own tasks`);
    if (task.attempt !== r.attempt)
      throw invalid("attempt", `the open attempt of "${r.taskId}" is ${task.attempt}, not ${r.attempt}`);
    if (ATTEMPT_OVER.has(task.status))
      throw new GatewayError(
        "INVALID_INPUT",
        `task "${r.taskId}" is already ${task.status}: its attempt ${task.attempt} is over`,
        "taskId",
      );
    const sent = await reportTaskOutcome(
      this.writer,
      { tenantId: p.tenantId, agentId },
      { goalId: r.goalId, taskId: r.taskId, attempt: r.attempt },
      r.outcome,
    );
    return receipt(sent, `${r.goalId}/${r.taskId}`, null, false);
  }
}
