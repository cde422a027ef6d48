/**
 * Agent failures as the process's directory reads them (AgentFailed, AgentRecovered, and the
 * AgentTerminated of scaled-in workers), decided on in every live partition of a role that reads
 * them: the dispatchers hand a failed agent's attempts to others. These facts live on
 * polity.agents.events, keyed by agent, which cannot be co-partitioned with a goal's topics; so they
 * come from the directory rather than from an input topic, and a partition going live decides on
 * the failures declared while it was elsewhere or restoring (a decision already in the log finds
 * nothing left to do).
 */
import type { PolityEvent } from "../../../schemas/reader.js";
import type { Extension } from "../../engine/extension.js";

export interface AgentEventSource {
  /** The AgentFailed facts of agents failed now. */
  failed(): PolityEvent[];
  /** Calls `listener` with each AgentFailed and AgentRecovered read from now on; returns an unsubscribe. */
  onStatusChange(listener: (event: PolityEvent) => void): () => void;
}

export function agentStatus(source: AgentEventSource): Extension {
  let unsubscribe: (() => void) | undefined;
  return {
    name: "agent-status",
    summary:
      "decides on AgentFailed/AgentRecovered/AgentTerminated from the process's directory, and on the current failures when a partition goes live",
    start(host) {
      unsubscribe = source.onStatusChange((event) => {
        if (!host.reads.has(event.type)) return;
        for (const slot of host.liveSlots()) {
          slot.decide([event]);
          slot.commit();
        }
      });
    },
    onLive(slot, host) {
      const failures = source.failed().filter((e) => host.reads.has(e.type));
      if (failures.length > 0) slot.decide(failures);
    },
    stop() {
      unsubscribe?.();
    },
  };
}
