/**
 * The autoscaler: every `intervalMs`, the host that owns partition 0 of the agent commands samples
 * the load of each autoscaled worker group from the directory's heartbeats and writes a ScaleAgents
 * (AUTOSCALER) where it is out of bounds. It is written as a command and decided on like any input,
 * so the decision, and its cool-down, are in the log.
 */
import type { Decision } from "../../domain/decider.js";
import type { AgentDirectory } from "../../domain/directory.js";
import { autoscaleCommands } from "../../domain/scaler.js";
import type { Extension } from "../../engine/extension.js";

export function autoscaleSampling(
  directory: AgentDirectory,
  autoscale: Parameters<typeof autoscaleCommands>[1],
  intervalMs: number,
): Extension {
  /** Groups the autoscaler asked to resize, and when: one sample is not repeated while it is decided. */
  const asked = new Map<string, number>();
  const sample = (now: Date): Decision[] =>
    autoscaleCommands(directory, autoscale, now).filter((d) => {
      const group = d.aggregate.id;
      if (now.getTime() - (asked.get(group) ?? 0) < 3 * intervalMs) return false;
      asked.set(group, now.getTime());
      return true;
    });
  return {
    name: "autoscale-sampling",
    summary: `samples worker groups' load every ${intervalMs} ms (partition 0's owner) and writes ScaleAgents beyond bounds`,
    writes: ["ScaleAgents"],
    timer: {
      intervalMs,
      fire(host) {
        const slot = host.liveSlots().find((s) => s.partition === 0);
        if (!slot) return;
        let decisions: Decision[];
        try {
          decisions = sample(new Date());
        } catch (e) {
          host.log(`${host.role}: sample failed: ${(e as Error).message}`);
          return;
        }
        if (decisions.length > 0) slot.write(decisions);
      },
    },
  };
}
