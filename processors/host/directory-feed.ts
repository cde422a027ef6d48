/**
 * Keeps an AgentDirectory in step with polity.agents.events, for the hosts of one process: read
 * from the beginning on start (resolving once caught up), then followed live. It uses a private
 * consumer group that never commits, because every process needs the whole directory.
 */
import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";
import { HEADER } from "../../producers/envelope.js";
import { EventWriter } from "../../producers/writer.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type { Codec } from "../../schemas/codec.js";
import { DecodeError } from "../../schemas/codec.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { AgentDirectory } from "../domain/directory.js";
import { MONITOR_ID } from "../domain/health.js";
import { registrationOf, type AgentSpec } from "../topology.js";
import { StatusFacts, type AgentEventSource } from "../roles/shared/agent-status.js";
import { TopicFollower } from "./follower.js";

const AGENTS_TOPIC = "polity.agents.events";

export class DirectoryFeed implements AgentEventSource {
  readonly directory = new AgentDirectory();
  private readonly follower: TopicFollower;
  /** Each agent's failure, termination or recovery in force (agent-status.ts). */
  private readonly facts = new StatusFacts();
  private readonly listeners = new Set<(event: PolityEvent) => void>();

  statusFacts(): PolityEvent[] {
    return this.facts.inForce();
  }

  onStatusChange(listener: (event: PolityEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private applied(event: PolityEvent): void {
    if (!this.facts.apply(event)) return;
    // A worker registered at run time (the scaler's): its dispatcher may hand it work.
    if (event.type === "AgentRegistered" && !this.caughtUpOnce) return;
    for (const listener of this.listeners) listener(event);
  }

  constructor(
    private readonly kafka: Kafka,
    private readonly codec: Codec,
    private readonly topicPrefix = "",
    log?: (line: string) => void,
  ) {
    this.follower = new TopicFollower(kafka, {
      topics: [physicalTopic(AGENTS_TOPIC, topicPrefix)],
      from: "beginning",
      groupId: `${topicPrefix}polity-directory-${randomUUID()}`,
      consumer: { maxWaitTimeInMs: 200 },
      log,
      onMessage: async (_topic, _partition, message) => {
        // Heartbeats are most of this topic; the directory keeps only each agent's latest load
        // (the autoscaler's input), so the monitor's own ticks are skipped unread.
        const key = message.key?.toString() ?? "";
        const type = message.headers?.[HEADER.type];
        if (
          type !== undefined &&
          String(Array.isArray(type) ? type[0] : type) === "AgentHeartbeat" &&
          key.startsWith(MONITOR_ID)
        )
          return;
        try {
          const decoded = await this.codec.decode(message.value);
          const event = { type: decoded.type, value: decoded.value } as unknown as PolityEvent;
          this.directory.apply(event);
          this.applied(event);
        } catch (e) {
          // The tiers' own consumers dead-letter bad messages; the directory only skips them.
          if (!(e instanceof DecodeError)) throw e;
        }
      },
    });
  }

  /** Starts following the topic; resolves when everything written before the call has been read. */
  async start(): Promise<void> {
    await this.follower.start("reading the agent directory (polity.agents.events)");
    this.caughtUpOnce = true;
  }

  private caughtUpOnce = false;

  /**
   * Resolves once everything written to the topic before the call has been read: a processor that
   * decides from the directory (the scaler) waits for it before it takes over a partition, so it
   * sees what the partition's previous owner wrote.
   */
  caughtUp(): Promise<void> {
    return this.follower.caughtUp("catching up with the agent directory");
  }

  /** Announces every configured agent the directory does not know yet, then waits to read them back. */
  async register(agents: AgentSpec[], log: (line: string) => void = () => undefined): Promise<number> {
    const missing = agents.filter((a) => !this.directory.get(a.agentId));
    if (missing.length > 0) {
      const writer = await EventWriter.connect(this.kafka, this.codec, { topicPrefix: this.topicPrefix });
      try {
        await writer.send(
          missing.map((a) => {
            const payload = registrationOf(a);
            return {
              type: "AgentRegistered" as const,
              context: {
                tenantId: "system",
                correlationId: a.agentId,
                actor: { id: "polity-processors", tier: "SYSTEM" as const },
                aggregate: { type: "AGENT" as const, id: a.agentId, version: 1 },
              },
              payload,
            };
          }),
        );
      } finally {
        await writer.disconnect();
      }
      log(`registered ${missing.length} agent(s)`);
    }
    await this.follower.waiters.until(
      () => agents.every((a) => this.directory.get(a.agentId)),
      30_000,
      "reading back the registered agents",
    );
    return missing.length;
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
