/**
 * The scaler: answers RegisterAgent and ScaleAgents (3 partitions, keyed by agent or worker group)
 * with AgentRegistered / AgentTerminated / AgentsScaled, or a NotificationBroadcast refusal. Its
 * state is the process's directory (a global view of polity.agents.events, which has 6 partitions
 * keyed by agent and so cannot be co-partitioned with the commands), so it has no state topic, and
 * a partition goes live only once the directory has caught up with the log. Where the topology
 * autoscales, it samples the load and writes its own ScaleAgents.
 */
import { scalerDecider } from "../../domain/scaler.js";
import { autoscaleOf, autoscales } from "../../topology.js";
import { defineRole } from "../role.js";
import { autoscaleSampling } from "./sampling.js";
import type { Extension } from "../../engine/extension.js";

export const scalerRole = defineRole({
  role: "scaler",
  tiers: ["SYSTEM"],
  group: "polity-scaler",
  inputs: ["polity.agents.commands"],
  state: [],
  writes: {
    "polity.agents.events": ["AgentRegistered", "AgentTerminated", "AgentsScaled"],
    "polity.agents.commands": ["ScaleAgents"],
    "polity.notifications": ["NotificationBroadcast"],
  },
  summary: "registers, scales and terminates agents on command; the autoscaler's samples are commands too",
  build(env) {
    const { topology } = env;
    const autoscale = (t: Parameters<typeof autoscaleOf>[1], d: string | null, s: string | null) =>
      autoscaleOf(topology, t, d, s);
    const directoryCaughtUp: Extension = {
      name: "directory-caught-up",
      summary: "a partition goes live once the process's agent directory has read polity.agents.events to its end",
      beforeLive: () => env.feed.caughtUp(),
    };
    return {
      decider: scalerDecider({ autoscale, heartbeatIntervalMs: topology.heartbeatIntervalMs }),
      extensions: [
        directoryCaughtUp,
        ...(autoscales(topology)
          ? [autoscaleSampling(env.feed.directory, autoscale, topology.autoscaleIntervalMs ?? 1_000)]
          : []),
      ],
    };
  },
});
