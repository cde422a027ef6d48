/**
 * The health monitor: folds polity.agents.events (registrations, heartbeats, failures) and declares
 * an agent failed when its heartbeats stop, and recovered when they resume.
 *
 * Time comes from the log, never from a clock: the health host writes a heartbeat of its own (tier
 * SYSTEM, agent `health-monitor...`) into each partition it owns, every interval. Reading one back is
 * a tick, and the tick's occurredAt is "now": every agent of the partition whose last heartbeat is
 * older than `timeoutFactor` times its interval, and that is not failed already, is declared failed.
 * Deciding a tick again (after a crash) finds the AgentFailed it wrote in the state, and adds nothing.
 */
import type { AgentHeartbeat, MessageTypeName } from "../../schemas/generated/types.js";
import { decision, type Decision, type DecisionContext, type TierDecider, type TierInput } from "./decider.js";
import type { AgentHealth, HierarchyState } from "./kernel/state.js";

/** Agent id of the monitor's own heartbeat; one per partition (see monitorIdFor in the host). */
export const MONITOR_ID = "health-monitor";

export interface HealthOptions {
  /** An agent is failed after this many of its intervals without a heartbeat. Default 3. */
  timeoutFactor?: number;
  /** Interval assumed for an agent whose registration was not read. Default 1000 ms. */
  defaultIntervalMs?: number;
}

export const HEALTH_READS: ReadonlySet<MessageTypeName> = new Set([
  "AgentRegistered",
  "AgentHeartbeat",
  "AgentFailed",
  "AgentRecovered",
  "AgentTerminated",
]);

/** Whether a heartbeat is one of the monitor's ticks. */
export function isTick(e: Pick<AgentHeartbeat, "agentId" | "tier">): boolean {
  return e.tier === "SYSTEM" && e.agentId.startsWith(MONITOR_ID);
}

export function healthDecider(options: HealthOptions = {}): TierDecider {
  const factor = options.timeoutFactor ?? 3;
  const defaultInterval = options.defaultIntervalMs ?? 1_000;
  const timeoutOf = (a: AgentHealth) => factor * (a.intervalMs ?? defaultInterval);
  return {
    role: "health",
    reads: HEALTH_READS,
    decide(input: TierInput, state: HierarchyState, _ctx: DecisionContext): Decision[] {
      if (input.type !== "AgentHeartbeat") return [];
      const e = input.value;
      if (isTick(e)) return tick(state, e, timeoutOf, factor);
      return recovered(state, e);
    },
  };
}

export const health: TierDecider = healthDecider();

const MONITOR_ACTOR = { id: MONITOR_ID, tier: "SYSTEM" as const };
const agentRef = (agentId: string) => ({ type: "AGENT" as const, id: agentId });

function tick(
  state: HierarchyState,
  e: AgentHeartbeat,
  timeoutOf: (a: AgentHealth) => number,
  factor: number,
): Decision[] {
  const now = e.envelope.occurredAt.getTime();
  const out: Decision[] = [];
  const agents = [...state.agents.values()].sort((a, b) => a.agentId.localeCompare(b.agentId));
  for (const a of agents) {
    // An agent never heard from is not watched: it may run outside the platform's processes.
    if (a.tier === "SYSTEM" || a.terminated || a.failure || !a.lastSeenAt) continue;
    const silentMs = now - a.lastSeenAt.getTime();
    const timeout = timeoutOf(a);
    if (silentMs <= timeout) continue;
    const interval = timeout / factor;
    out.push(
      decision(
        "AgentFailed",
        {
          agentId: a.agentId,
          tier: a.tier,
          superiorId: a.superiorId,
          reason: `no heartbeat for ${silentMs} ms (timeout ${timeout} ms)`,
          missedHeartbeats: Math.floor(silentMs / interval),
          lastHeartbeatAt: a.lastSeenAt,
          inFlightTasks: a.inFlight,
        },
        MONITOR_ACTOR,
        agentRef(a.agentId),
      ),
    );
  }
  return out;
}

/** A heartbeat newer than the last one seen when the agent was declared failed: it is back. */
function recovered(state: HierarchyState, e: AgentHeartbeat): Decision[] {
  const a = state.agents.get(e.agentId);
  if (!a?.failure || a.terminated) return [];
  const at = e.envelope.occurredAt.getTime();
  if (a.failure.lastHeartbeatAt && at <= a.failure.lastHeartbeatAt.getTime()) return [];
  return [
    decision(
      "AgentRecovered",
      {
        agentId: a.agentId,
        tier: a.tier,
        downtimeMs: Math.max(0, at - a.failure.at.getTime()),
        failureReason: a.failure.reason,
      },
      MONITOR_ACTOR,
      agentRef(a.agentId),
    ),
  ];
}
