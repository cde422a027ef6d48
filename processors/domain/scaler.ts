/**
 * The scaler (role "scaler", a SYSTEM processor): answers polity.agents.commands, and the autoscaler
 * that asks it to scale worker groups by their load.
 *
 * - RegisterAgent -> AgentRegistered (commandId set). Refused when the id is taken, the tier is not
 *   one of the topology's, or the superior is unknown, not available, or missing below the top.
 * - ScaleAgents (tier WORKER; a group is a topology, domain and specialization) -> AgentsScaled
 *   (previous and new count, who was added and retired, trigger, reason) after:
 *   - scaling up: one AgentRegistered per new worker, id `<topology>-worker-<domain>-<spec>-<n>`
 *     (n after the highest ever used in the group), capacity, executor and heartbeat interval
 *     copied from the group's first worker, superior the group's mayor (aamas) or sub-master (dgm)
 *     with the fewest of the group's workers;
 *   - scaling down: one AgentTerminated (cause SCALED_DOWN) per retired worker, chosen failed
 *     ones first, then least loaded (by its latest heartbeat), then newest. A retired worker is
 *     terminated at once: the directory no longer offers it work, its host stops running it (its
 *     running attempts are aborted) and stops its heartbeats, and the mayor or sub-master that gave
 *     it tasks hands its open attempts to other workers as it does for a failed one (reassign.ts,
 *     cause AGENT_TERMINATED). `drained` says whether it held nothing by its latest heartbeat, and
 *     `reassignedTaskIds` the tasks (goalId/taskId) it reported then; the TaskReassigned events
 *     are the exact record.
 *   A ScaleAgents that changes nothing (the group already has targetCount workers) writes nothing.
 * - A refused command is recorded as a NotificationBroadcast (subject "agent-command-refused",
 *   severity WARNING, data: commandId, command, reason): the schemas have no AgentRejected, and a
 *   notification reaches the operator's tenant. An autoscaler command that no longer applies
 *   (inside the group's cool-down, autoscaling off) is dropped without one: it is the system's own
 *   sample, not an operator's request.
 *
 * State: the global agent directory (ctx.directory: agents, the commands answered through the
 * commandId of AgentRegistered/AgentsScaled, when each group was last scaled, the latest
 * heartbeats) joined with the scaler's own writes not read back yet (state.scaling). The scaler's
 * only input topic is polity.agents.commands (3 partitions) and it has no state topic of its own:
 * polity.agents.events has 6 partitions and is keyed by agent, so it cannot be co-partitioned with
 * the commands; the directory is its global view instead. A command decided again (the same
 * command delivered twice) finds its commandId answered (or refused) and writes nothing.
 *
 * The autoscaler (`autoscale`, `autoscaleCommands`) is pure too: given a group's workers, the
 * tasks they hold by their latest heartbeats and the time, it says whether the group should grow
 * or shrink. The scaler's host samples it on a timer (hierarchy.ts) and writes what it says as a
 * ScaleAgents command (trigger AUTOSCALER, loadRatio and reason set); the scaler decides on that
 * command like any other, re-checking the cool-down and min/max against the command's time (the
 * log's, not a clock), so the decision itself is deterministic and every one of them is in the log.
 */
import type { Actor, AgentTerminated, RegisterAgent, ScaleAgents, Topology } from "../../schemas/generated/types.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import { groupKey, roleOf, TIERS_OF, type AgentDirectory, type AgentInfo, type ReportedLoad } from "./directory.js";
import { REFUSED_SUBJECT } from "./scaling-log.js";
import type { HierarchyState } from "./kernel/state.js";

export const SCALER: Actor = { id: "scaler", tier: "SYSTEM" };
export const AUTOSCALER: Actor = { id: "autoscaler", tier: "SYSTEM" };

/** Autoscaling of a worker group; off unless configured (topology.ts `autoscale`). */
export interface AutoscaleConfig {
  /** Load ratio (held tasks / capacity) the group aims at: above 1.2x it grows, below 0.5x it shrinks. */
  targetLoad: number;
  min: number;
  max: number;
  /** Time between two scalings of one group. */
  cooldownMs: number;
}

export const SCALE_UP_FACTOR = 1.2;
export const SCALE_DOWN_FACTOR = 0.5;

export interface ScalerOptions {
  /** A group's autoscaling; null when it is off. */
  autoscale?: (topology: Topology, domain: string | null, specialization: string | null) => AutoscaleConfig | null;
  /** Heartbeat interval of an agent registered without one. Default 5000 ms. */
  heartbeatIntervalMs?: number;
}

export function scalerDecider(options: ScalerOptions = {}): TierDecider {
  return {
    role: "scaler",
    reads: new Set(["RegisterAgent", "ScaleAgents"]),
    decide(input: TierInput, state: HierarchyState, ctx: DecisionContext): Decision[] {
      switch (input.type) {
        case "RegisterAgent":
          return register(input.value, viewOf(state, ctx), options);
        case "ScaleAgents":
          return scale(input.value, viewOf(state, ctx), options);
        default:
          return [];
      }
    },
  };
}

export const scaler: TierDecider = scalerDecider();

// ---- the view: the directory and the scaler's own writes -----------------------------------------

interface View {
  get(agentId: string): AgentInfo | undefined;
  all(): AgentInfo[];
  answered(commandId: string): boolean;
  lastScaledAt(group: string): Date | null;
  load(agentId: string): ReportedLoad | null;
}

function viewOf(state: HierarchyState, ctx: DecisionContext): View {
  const own = state.scaling.directory;
  const global = ctx.directory;
  const merge = (g: AgentInfo | undefined, o: AgentInfo | undefined) => (o?.status === "TERMINATED" ? o : (g ?? o));
  return {
    get: (id) => merge(global.get(id), own.get(id)),
    all: () => {
      const ids = new Set([...global.all(), ...own.all()].map((a) => a.agentId));
      return [...ids].sort().map((id) => merge(global.get(id), own.get(id))!);
    },
    answered: (id) => global.hasAnswered(id) || own.hasAnswered(id) || state.scaling.refused.has(id),
    lastScaledAt: (group) => later(global.lastScaledAt(group), own.lastScaledAt(group)),
    load: (id) => global.reportedLoad(id),
  };
}

function later(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}

const AVAILABLE = new Set(["STARTING", "IDLE", "BUSY", "OVERLOADED"]);

function refusal(command: "RegisterAgent" | "ScaleAgents", commandId: string, subject: string, reason: string) {
  return [
    decision(
      "NotificationBroadcast",
      {
        notificationId: `refused-${commandId}`,
        subject: REFUSED_SUBJECT,
        message: `${command} ${subject} refused: ${reason}`,
        severity: "WARNING",
        audienceTiers: [],
        audienceDomains: [],
        goalId: null,
        expiresAt: null,
        data: { commandId, command, subject, reason },
      },
      SCALER,
      { type: "SYSTEM", id: commandId },
    ),
  ];
}

// ---- RegisterAgent -------------------------------------------------------------------------------

function register(cmd: RegisterAgent, view: View, options: ScalerOptions): Decision[] {
  const commandId = cmd.envelope.eventId;
  if (view.answered(commandId)) return [];
  const refuse = (reason: string) => refusal("RegisterAgent", commandId, cmd.agentId, reason);
  const existing = view.get(cmd.agentId);
  if (existing) return refuse(`agent ${cmd.agentId} is already registered (${existing.status})`);
  if (!TIERS_OF[cmd.topology].includes(cmd.tier))
    return refuse(`tier ${cmd.tier} is not one of ${cmd.topology}'s (${TIERS_OF[cmd.topology].join(", ")})`);
  const top = roleOf(cmd.tier) === "president";
  if (cmd.superiorId === null && !top) return refuse(`a ${cmd.tier} needs a superior`);
  if (cmd.superiorId !== null) {
    const superior = view.get(cmd.superiorId);
    if (!superior) return refuse(`unknown superior ${cmd.superiorId}`);
    if (!AVAILABLE.has(superior.status))
      return refuse(`superior ${cmd.superiorId} is ${superior.status.toLowerCase()}`);
    if (superior.topology !== cmd.topology)
      return refuse(`superior ${cmd.superiorId} belongs to ${superior.topology}, not ${cmd.topology}`);
  }
  if (cmd.capacity < 1 && cmd.tier === "WORKER") return refuse("a worker needs a capacity of at least 1");
  return [
    decision(
      "AgentRegistered",
      {
        agentId: cmd.agentId,
        name: cmd.name,
        tier: cmd.tier,
        topology: cmd.topology,
        domain: cmd.domain,
        specialization: cmd.specialization,
        superiorId: cmd.superiorId,
        capacity: cmd.capacity,
        executor: cmd.executor,
        labels: cmd.labels,
        heartbeatIntervalMs: cmd.heartbeatIntervalMs ?? options.heartbeatIntervalMs ?? 5_000,
        commandId,
      },
      SCALER,
      { type: "AGENT", id: cmd.agentId, version: 1 },
    ),
  ];
}

// ---- ScaleAgents ---------------------------------------------------------------------------------

function inGroup(a: AgentInfo, topology: Topology, domain: string | null, specialization: string | null): boolean {
  return a.tier === "WORKER" && a.topology === topology && a.domain === domain && a.specialization === specialization;
}

/** The number at the end of a worker id of the group (`...-<n>`), or 0. */
function numberOf(agentId: string, prefix: string): number {
  if (!agentId.startsWith(prefix)) return 0;
  const n = Number(agentId.slice(prefix.length));
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function scale(cmd: ScaleAgents, view: View, options: ScalerOptions): Decision[] {
  const commandId = cmd.envelope.eventId;
  if (view.answered(commandId)) return [];
  const { topology, domain, specialization } = cmd;
  const group = groupKey(topology, domain, specialization);
  const auto = cmd.trigger === "AUTOSCALER";
  const refuse = (reason: string) => (auto ? [] : refusal("ScaleAgents", commandId, group, reason));
  if (cmd.tier !== "WORKER") return refuse(`only workers are scaled, not ${cmd.tier}`);
  if (!Number.isInteger(cmd.targetCount) || cmd.targetCount < 0)
    return refuse(`targetCount ${cmd.targetCount} must be a whole number >= 0`);
  const members = view.all().filter((a) => inGroup(a, topology, domain, specialization));
  const active = members.filter((a) => a.status !== "TERMINATED");
  const template = active[0] ?? members[0];
  if (!template) return refuse(`no worker of ${group} is registered to copy`);

  let target = cmd.targetCount;
  if (auto) {
    const config = options.autoscale?.(topology, domain, specialization);
    if (!config) return [];
    const last = view.lastScaledAt(group);
    if (last && cmd.envelope.occurredAt.getTime() - last.getTime() < config.cooldownMs) return [];
    target = Math.min(config.max, Math.max(config.min, target));
  }
  if (target === active.length) return [];

  const out: Decision[] = [];
  const added: string[] = [];
  const retired: string[] = [];
  if (target > active.length) {
    // Superiors: those of the group's workers that can still dispatch, fewest of the group first.
    const perSuperior = new Map<string, number>();
    for (const a of members) {
      const s = a.superiorId ? view.get(a.superiorId) : undefined;
      if (s && AVAILABLE.has(s.status)) perSuperior.set(s.agentId, perSuperior.get(s.agentId) ?? 0);
    }
    for (const a of active)
      if (perSuperior.has(a.superiorId!)) perSuperior.set(a.superiorId!, perSuperior.get(a.superiorId!)! + 1);
    if (perSuperior.size === 0) return refuse(`no available superior for the workers of ${group}`);
    const prefix = `${[topology, "worker", domain, specialization].filter((p) => p !== null).join("-")}-`;
    let n = Math.max(0, ...view.all().map((a) => numberOf(a.agentId, prefix)));
    for (let i = active.length; i < target; i++) {
      const superiorId = [...perSuperior].sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]))[0]![0];
      perSuperior.set(superiorId, perSuperior.get(superiorId)! + 1);
      n += 1;
      const agentId = `${prefix}${n}`;
      added.push(agentId);
      out.push(
        decision(
          "AgentRegistered",
          {
            agentId,
            name: `${specialization ?? "any"} worker ${n} of ${domain ?? topology}`,
            tier: "WORKER",
            topology,
            domain,
            specialization,
            superiorId,
            capacity: template.capacity,
            executor: template.executor,
            labels: { scaledBy: cmd.trigger },
            heartbeatIntervalMs: template.heartbeatIntervalMs,
            commandId,
          },
          SCALER,
          { type: "AGENT", id: agentId, version: 1 },
        ),
      );
    }
  } else {
    const rank = (a: AgentInfo) => (a.status === "FAILED" ? 0 : 1);
    const held = (a: AgentInfo) => view.load(a.agentId)?.held ?? 0;
    const candidates = [...active].sort(
      (x, y) =>
        rank(x) - rank(y) ||
        held(x) - held(y) ||
        numberOfAny(y.agentId) - numberOfAny(x.agentId) ||
        y.agentId.localeCompare(x.agentId),
    );
    for (const a of candidates.slice(0, active.length - target)) {
      retired.push(a.agentId);
      const inFlight = view.load(a.agentId)?.inFlight ?? [];
      const payload: Omit<AgentTerminated, "envelope"> = {
        agentId: a.agentId,
        tier: a.tier,
        cause: "SCALED_DOWN",
        reason: `${group} scaled down to ${target}: ${cmd.reason}`,
        drained: inFlight.length === 0,
        reassignedTaskIds: inFlight,
      };
      out.push(decision("AgentTerminated", payload, SCALER, { type: "AGENT", id: a.agentId }));
    }
  }
  const ratio = cmd.loadRatio === null ? "" : ` (load ratio ${cmd.loadRatio.toFixed(2)})`;
  out.push(
    decision(
      "AgentsScaled",
      {
        tier: "WORKER",
        topology,
        domain,
        specialization,
        previousCount: active.length,
        newCount: target,
        addedAgentIds: added,
        retiredAgentIds: retired,
        trigger: cmd.trigger,
        reason: `${cmd.reason}${ratio}`,
        commandId,
      },
      SCALER,
      { type: "SYSTEM", id: group },
    ),
  );
  return out;
}

function numberOfAny(agentId: string): number {
  const m = /-(\d+)$/.exec(agentId);
  return m ? Number(m[1]) : 0;
}

// ---- the autoscaler ------------------------------------------------------------------------------

export interface GroupLoad {
  topology: Topology;
  domain: string | null;
  specialization: string | null;
  /** Workers of the group, not terminated. */
  workers: number;
  /** Tasks they hold, by their latest heartbeats. */
  held: number;
  /** Their total capacity. */
  capacity: number;
  lastScaledAt: Date | null;
}

export interface AutoscaleAdvice {
  targetCount: number;
  loadRatio: number;
  reason: string;
}

/**
 * The AAMAS rule for one group: load ratio = held / capacity; above 1.2 x targetLoad it grows to
 * the count that brings the ratio back to targetLoad (at least one more), below 0.5 x targetLoad
 * it shrinks by one; never outside [min, max] (a group outside them is brought back), and never
 * within cooldownMs of its last scaling. Null when nothing is to change.
 */
export function autoscale(group: GroupLoad, config: AutoscaleConfig, now: Date): AutoscaleAdvice | null {
  if (group.lastScaledAt && now.getTime() - group.lastScaledAt.getTime() < config.cooldownMs) return null;
  const ratio = group.capacity > 0 ? group.held / group.capacity : 0;
  const perWorker = group.workers > 0 ? group.capacity / group.workers : 1;
  const shown = ratio.toFixed(2);
  if (group.workers < config.min)
    return { targetCount: config.min, loadRatio: ratio, reason: `below the minimum of ${config.min} workers` };
  if (group.workers > config.max)
    return { targetCount: config.max, loadRatio: ratio, reason: `above the maximum of ${config.max} workers` };
  if (ratio > SCALE_UP_FACTOR * config.targetLoad && group.workers < config.max) {
    const wanted = Math.ceil(group.held / (config.targetLoad * perWorker));
    const targetCount = Math.min(config.max, Math.max(group.workers + 1, wanted));
    return {
      targetCount,
      loadRatio: ratio,
      reason: `autoscale up: load ratio ${shown} above ${SCALE_UP_FACTOR} x target ${config.targetLoad}`,
    };
  }
  if (ratio < SCALE_DOWN_FACTOR * config.targetLoad && group.workers > config.min)
    return {
      targetCount: group.workers - 1,
      loadRatio: ratio,
      reason: `autoscale down: load ratio ${shown} below ${SCALE_DOWN_FACTOR} x target ${config.targetLoad}`,
    };
  return null;
}

/** The groups of a directory: their workers, load and last scaling. */
export function groupLoads(directory: AgentDirectory): GroupLoad[] {
  const groups = new Map<string, GroupLoad>();
  for (const a of directory.all()) {
    if (a.tier !== "WORKER") continue;
    const key = groupKey(a.topology, a.domain, a.specialization);
    let g = groups.get(key);
    if (!g)
      groups.set(
        key,
        (g = {
          topology: a.topology,
          domain: a.domain,
          specialization: a.specialization,
          workers: 0,
          held: 0,
          capacity: 0,
          lastScaledAt: directory.lastScaledAt(key),
        }),
      );
    if (a.status === "TERMINATED") continue;
    g.workers += 1;
    g.capacity += a.capacity;
    g.held += directory.reportedLoad(a.agentId)?.held ?? 0;
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, g]) => g);
}

/** The autoscaler's sample: a ScaleAgents (trigger AUTOSCALER) for each group it would resize. */
export function autoscaleCommands(
  directory: AgentDirectory,
  configOf: NonNullable<ScalerOptions["autoscale"]>,
  now: Date,
): Decision[] {
  const out: Decision[] = [];
  for (const g of groupLoads(directory)) {
    const config = configOf(g.topology, g.domain, g.specialization);
    if (!config || g.workers === 0) continue;
    const advice = autoscale(g, config, now);
    if (!advice) continue;
    out.push(
      decision(
        "ScaleAgents",
        {
          tier: "WORKER",
          topology: g.topology,
          domain: g.domain,
          specialization: g.specialization,
          targetCount: advice.targetCount,
          trigger: "AUTOSCALER",
          reason: advice.reason,
          loadRatio: advice.loadRatio,
        },
        AUTOSCALER,
        { type: "SYSTEM", id: groupKey(g.topology, g.domain, g.specialization) },
      ),
    );
  }
  return out;
}
