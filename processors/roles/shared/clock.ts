/**
 * The deciders' clock (domain/time-limits.ts: attempt time limits, goal deadlines): every
 * `intervalMs`, each live partition decides on a ClockTicked with the time now, unless `due` says
 * its state has nothing to watch. The tick is never written; what it decides is, so a replay needs
 * no clock and a tick decided again after a restart finds those facts in the state.
 */
import type { HierarchyState } from "../../domain/kernel/state.js";
import type { Extension } from "../../engine/extension.js";

export function clock(intervalMs: number, due?: (state: HierarchyState) => boolean): Extension {
  return {
    name: "clock",
    summary: `decides on ClockTicked every ${intervalMs} ms in each live partition with something timed (never written)`,
    timer: {
      intervalMs,
      fire(host) {
        const now = new Date();
        for (const slot of host.liveSlots()) {
          if (due && !due(slot.state)) continue;
          if (slot.decide([{ type: "ClockTicked", now }]) === 0) continue;
          slot.startSideEffects();
          slot.commit();
        }
      },
    },
  };
}

/**
 * How often the roles that watch time are handed it: the dispatchers (mayor, sub-master) for
 * attempts under a limit, the top for goal deadlines. A limit is enforced within this much of
 * passing; a tick of a partition with nothing to watch costs no work.
 */
export const CLOCK_MS = 500;
