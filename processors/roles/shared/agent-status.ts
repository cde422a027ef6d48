/**
 * Agent failures as the process's directory reads them (AgentFailed, AgentRecovered, and the
 * AgentTerminated of scaled-in workers), decided on in every live partition of a role that reads
 * them: the dispatchers hand a failed agent's attempts to others, and hand what waits to an agent
 * that is back. These facts live on polity.agents.events, keyed by agent, which cannot be
 * co-partitioned with a goal's topics; so they come from the directory rather than from an input
 * topic, and a partition going live decides on the facts in force (the failures, and the recoveries
 * since the last failure of each agent) that it may have missed while it was elsewhere or restoring.
 * A decision already in the log finds nothing left to do; a recovery hands out only what still waits.
 *
 * Without the recoveries, a partition that was restoring (a failed transaction, a rebalance) when
 * an agent came back never handed it the tasks queued for it while it was down: they waited for
 * an event that never came (a fault-suite run lost a goal this way, worker down past its timeout).
 */
import type { PolityEvent } from "../../../schemas/reader.js";
import type { Extension } from "../../engine/extension.js";

export interface AgentEventSource {
  /**
   * The facts in force now: the AgentFailed of each failed agent, the AgentTerminated of each
   * terminated one, the AgentRecovered of each agent back since its last failure.
   */
  statusFacts(): PolityEvent[];
  /** Calls `listener` with each AgentFailed and AgentRecovered read from now on; returns an unsubscribe. */
  onStatusChange(listener: (event: PolityEvent) => void): () => void;
}

/**
 * The status facts in force, folded from polity.agents.events: per agent, its AgentFailed while it
 * is failed, its AgentRecovered once it is back (until it fails again), its AgentTerminated once the
 * scaler retired it (a dispatcher treats a terminated agent as a failed one). A worker registered
 * at run time is no longer terminated (an id the scaler reuses).
 */
export class StatusFacts {
  private readonly facts = new Map<string, PolityEvent>();

  /** Folds `event`; whether it is a status change a dispatcher decides on. */
  apply(event: PolityEvent): boolean {
    switch (event.type) {
      case "AgentFailed":
      case "AgentRecovered":
      case "AgentTerminated":
        this.facts.set(event.value.agentId, event);
        return true;
      case "AgentRegistered":
        if (event.value.tier !== "WORKER") return false;
        if (this.facts.get(event.value.agentId)?.type === "AgentTerminated") this.facts.delete(event.value.agentId);
        return true;
      default:
        return false;
    }
  }

  inForce(): PolityEvent[] {
    return [...this.facts.values()];
  }
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
      const facts = source.statusFacts().filter((e) => host.reads.has(e.type));
      if (facts.length > 0) slot.decide(facts);
    },
    stop() {
      unsubscribe?.();
    },
  };
}
