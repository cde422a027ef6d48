/**
 * The gateway's write side, shared by GraphQL mutations and REST: check the caller, parse the
 * input (gateway/inputs.ts), write one command through producers/commands.ts, and optionally wait
 * until the read model shows its effect so the client can read its own write.
 *
 * The gateway writes only commands (and an agent's own task reports); it never writes events of
 * the hierarchy or the read models.
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
import { ATTEMPT_OVER } from "../processors/domain/status.js";
import { require, type Principal } from "./auth.js";
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
  ) {}

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
    const sent = await scaleAgents(this.writer, who(p), request);
    return receipt(sent, sent.envelope.aggregate.id, null, false);
  }

  async definePolicy(principal: Principal | null, raw: unknown, options: WriteOptions = {}): Promise<CommandReceipt> {
    const p = require(principal, "govern");
    const policy = parseDefinePolicy(raw);
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
    const sent = await registerAgent(this.writer, who(p), agent);
    const ms = this.wait(options);
    const outcome =
      ms === null
        ? null
        : await waitFor(async () => ((await this.read.agent(agent.agentId)) ? "REGISTERED" : null), ms);
    return receipt(sent, agent.agentId, outcome, ms !== null);
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
