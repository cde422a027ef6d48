/**
 * The health monitor's clock: every `intervalMs`, the monitor's own heartbeat into each agents
 * partition this host owns. Reading it back is the health decider's tick (domain/health.ts), so a
 * failure is decided from the log's time, and a restarted monitor decides the same.
 */
import { topicFor } from "../../../schemas/catalog.js";
import { decision } from "../../domain/decider.js";
import { MONITOR_ID } from "../../domain/health.js";
import type { Extension } from "../../engine/extension.js";
import { partitionOfKey } from "../../engine/partitioner.js";

export function monitorTicks(intervalMs: number): Extension {
  /** Per monitor id: ticks sent since this host started, and when the last went out. */
  const beats = new Map<string, { sequence: number; lastAt: number }>();
  return {
    name: "monitor-ticks",
    summary: `writes the monitor's AgentHeartbeat into each of its partitions every ${intervalMs} ms (its clock)`,
    writes: ["AgentHeartbeat"],
    timer: {
      intervalMs,
      fire(host) {
        const partitions = topicFor("AgentHeartbeat").partitions;
        for (const slot of host.liveSlots()) {
          const agentId = monitorIdFor(slot.partition, partitions);
          const beat = beats.get(agentId) ?? { sequence: 0, lastAt: 0 };
          beat.sequence += 1;
          beat.lastAt = Date.now();
          beats.set(agentId, beat);
          const d = decision(
            "AgentHeartbeat",
            {
              agentId,
              tier: "SYSTEM",
              status: "BUSY",
              load: 0,
              capacity: 0,
              inFlightTasks: [],
              sequence: beat.sequence,
              at: new Date(beat.lastAt),
            },
            { id: agentId, tier: "SYSTEM" },
            { type: "AGENT", id: agentId },
          );
          slot.write([d]);
        }
      },
    },
  };
}

const monitorIds = new Map<string, string>();

/**
 * The monitor's agent id for a partition: `health-monitor` where that key lands, else the first
 * `health-monitor-<n>` the producer's default partitioner (murmur2, as Java's) puts on it.
 */
export function monitorIdFor(partition: number, partitions: number): string {
  const cacheKey = `${partition}/${partitions}`;
  const known = monitorIds.get(cacheKey);
  if (known) return known;
  for (let n = 0; ; n++) {
    const key = n === 0 ? MONITOR_ID : `${MONITOR_ID}-${n}`;
    if (partitionOfKey(key, partitions) === partition) {
      monitorIds.set(cacheKey, key);
      return key;
    }
  }
}
