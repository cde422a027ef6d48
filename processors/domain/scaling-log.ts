/**
 * The scaler's own writes, as its host folds them (domain/scaler.ts): the agents it registered or
 * terminated, the groups it scaled and the commands it refused, kept in the state of the partition
 * that decided them. The scaler reads the process's global directory (ctx.directory), which learns
 * of these writes only once it reads them back from polity.agents.events; until then this log
 * fills the gap, so a command decided right after another sees the other's effect.
 */
import type { PolityEvent } from "../../schemas/reader.js";
import type { MessageTypeName } from "../../schemas/generated/types.js";
import { AgentDirectory } from "./directory.js";

/** Subject of the NotificationBroadcast that records a refused agent command. */
export const REFUSED_SUBJECT = "agent-command-refused";

export const SCALING_EVENTS: ReadonlySet<MessageTypeName> = new Set([
  "AgentRegistered",
  "AgentTerminated",
  "AgentsScaled",
  "NotificationBroadcast",
]);

export class ScalingLog {
  /** The agents and scalings this partition wrote. */
  readonly directory = new AgentDirectory();
  /** Commands refused (their NotificationBroadcast's data.commandId). */
  readonly refused = new Set<string>();

  apply(event: PolityEvent): void {
    if (event.type === "NotificationBroadcast") {
      const commandId = event.value.data.commandId;
      if (event.value.subject === REFUSED_SUBJECT && commandId) this.refused.add(commandId);
      return;
    }
    this.directory.apply(event);
  }
}
