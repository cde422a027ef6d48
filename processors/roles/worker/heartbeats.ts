/**
 * Workers' heartbeats: an AgentHeartbeat for every hosted agent, each at its registered interval,
 * with its load as this process sees it; all due beats go in one transaction, through the first
 * live partition's writer. The health monitor declares an agent failed when they stop.
 */
import { decision, type Decision } from "../../domain/decider.js";
import type { AgentDirectory } from "../../domain/directory.js";
import { loadOf } from "../../domain/kernel/state.js";
import type { Extension } from "../../engine/extension.js";
import type { SilencedAgents } from "../silenced.js";

export function heartbeats(
  directory: AgentDirectory,
  hosts: (agentId: string) => boolean,
  silenced: SilencedAgents,
): Extension {
  const hosted = () => directory.all().filter((a) => hosts(a.agentId));
  /** The timer's period: the shortest interval of the agents hosted at start, at most a second. */
  let period = 1_000;
  /** Per hosted agent: heartbeats sent since this host started, and when the last went out. */
  const beats = new Map<string, { sequence: number; lastAt: number }>();
  return {
    name: "heartbeats",
    summary: "writes an AgentHeartbeat per hosted agent at its interval, with its load",
    writes: ["AgentHeartbeat"],
    timer: {
      intervalMs: () => (period = Math.min(1_000, ...hosted().map((a) => Math.max(10, a.heartbeatIntervalMs)))),
      fire(host) {
        const slots = host.liveSlots();
        const carrier = slots[0];
        if (!carrier) return;
        const now = Date.now();
        const out: Decision[] = [];
        for (const agent of hosted()) {
          if (silenced.has(agent.agentId) || agent.status === "TERMINATED") continue;
          const beat = beats.get(agent.agentId) ?? { sequence: 0, lastAt: 0 };
          if (now - beat.lastAt < agent.heartbeatIntervalMs - period / 2) continue;
          beat.sequence += 1;
          beat.lastAt = now;
          beats.set(agent.agentId, beat);
          // The agent's load, as this process sees it: the tasks its partitions have running on it.
          const inFlight: string[] = [];
          let held = 0;
          for (const slot of slots) {
            held += loadOf(slot.state, agent.agentId);
            for (const key of slot.state.activeByAgent.get(agent.agentId) ?? []) {
              const t = slot.state.tasks.get(key);
              if (t && t.workerId === agent.agentId) inFlight.push(key);
            }
          }
          const load = agent.capacity > 0 ? held / agent.capacity : 0;
          out.push(
            decision(
              "AgentHeartbeat",
              {
                agentId: agent.agentId,
                tier: agent.tier,
                status: held === 0 ? "IDLE" : load >= 1 ? "OVERLOADED" : "BUSY",
                load,
                capacity: agent.capacity,
                inFlightTasks: inFlight.sort(),
                sequence: beat.sequence,
                at: new Date(now),
              },
              { id: agent.agentId, tier: agent.tier },
              { type: "AGENT", id: agent.agentId },
            ),
          );
        }
        if (out.length > 0) carrier.write(out);
      },
    },
  };
}
