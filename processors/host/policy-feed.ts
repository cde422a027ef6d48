/**
 * Keeps a PolicyBook in step with polity.policies.events for the hosts of one process, as the
 * DirectoryFeed does for agents: read from the beginning on start (resolving once caught up), then
 * followed live, with a private consumer group that never commits, because every decider may
 * consult any policy (`ctx.policies`).
 *
 * The view is eventually consistent: a version is seen here a moment after the policy engine
 * writes it. Deciders consult `book.at(time of the input)`, so a late view can only miss a version
 * accepted just before the input, never apply one accepted after it.
 */
import { topicOffsets } from "../../lib/kafka.js";
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { physicalTopic } from "../../schemas/catalog.js";
import type { Codec } from "../../schemas/codec.js";
import { DecodeError } from "../../schemas/codec.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { PolicyBook } from "../domain/policies/book.js";
import { Waiters } from "./waiters.js";

const POLICIES_TOPIC = "polity.policies.events";

export class PolicyFeed {
  readonly book = new PolicyBook();
  private consumer?: Consumer;
  private readonly waiters = new Waiters();

  constructor(
    private readonly kafka: Kafka,
    private readonly codec: Codec,
    private readonly topicPrefix = "",
  ) {}

  /** Starts following the topic; resolves when everything written before the call has been read. */
  async start(): Promise<void> {
    const topic = physicalTopic(POLICIES_TOPIC, this.topicPrefix);
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = await topicOffsets(admin, topic).finally(() => admin.disconnect());
    const target = new Map(ends.map((o) => [o.partition, BigInt(o.high)]));
    const position = new Map(ends.map((o) => [o.partition, BigInt(o.low)]));
    const caughtUp = () => [...target].every(([p, end]) => (position.get(p) ?? 0n) >= end);

    const consumer = this.kafka.consumer({
      groupId: `${this.topicPrefix}polity-policies-${randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
    });
    this.consumer = consumer;
    const advance = (partition: number, lastOffset: string) => {
      const next = BigInt(lastOffset) + 1n;
      if (next > (position.get(partition) ?? 0n)) position.set(partition, next);
      this.waiters.wake();
    };
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => advance(payload.partition, payload.lastOffset));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          try {
            const decoded = await this.codec.decode(message.value);
            this.book.apply({ type: decoded.type, value: decoded.value } as unknown as PolityEvent);
          } catch (e) {
            // The policy engine's own consumer dead-letters bad messages; the feed only skips them.
            if (!(e instanceof DecodeError)) throw e;
          }
        }
        advance(batch.partition, batch.lastOffset());
      },
    });
    await this.waiters.until(caughtUp, 60_000, "reading the policies (polity.policies.events)");
  }

  /** Resolves once the book holds `version` of `policyId` (or a later one). */
  known(policyId: string, version: number, timeoutMs = 30_000): Promise<void> {
    return this.waiters.until(
      () => (this.book.latest(policyId)?.version ?? 0) >= version,
      timeoutMs,
      `reading version ${version} of policy ${policyId}`,
    );
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
