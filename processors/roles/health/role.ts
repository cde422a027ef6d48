/**
 * The health monitor: folds agents' heartbeats, partition by partition (keyed by agent), and
 * declares an agent silent for too long failed (AgentFailed), and recovered at its next beat. Its
 * own ticks are its clock. Without workers' heartbeats it does not run: every agent would fail.
 */
import { health, healthDecider } from "../../domain/health.js";
import { defineRole } from "../role.js";
import { monitorTicks } from "./ticks.js";

/**
 * How often the monitor ticks: as often as agents heartbeat (5 s unless the topology says
 * otherwise). Every tick is an event on each agents partition the monitor owns, kept for ever and
 * projected, so it is not ticked more often than that.
 */
const TICK_MS = 5_000;

export const healthRole = defineRole({
  role: "health",
  tiers: ["SYSTEM"],
  group: "polity-health",
  inputs: ["polity.agents.events"],
  state: ["polity.agents.events"],
  writes: { "polity.agents.events": ["AgentHeartbeat", "AgentFailed", "AgentRecovered"] },
  summary: "declares agents silent for too long failed, and recovered at their next heartbeat",
  runs: ({ heartbeats }) => heartbeats,
  build(env) {
    return {
      decider: env.health ? healthDecider(env.health) : health,
      extensions: [monitorTicks(Math.min(TICK_MS, env.topology.heartbeatIntervalMs ?? TICK_MS))],
    };
  },
});
