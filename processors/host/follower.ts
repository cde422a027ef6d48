/**
 * Follows one topic from its beginning, for a feed that every process needs whole (the agent
 * directory, the policy book): a private consumer group that never commits, the next offset to read
 * kept here per partition, and waiters woken after every batch.
 *
 * When kafkajs gives up on the consumer (a crash it does not restart from, seen after a broker
 * restart), a new one takes its place and carries on from the positions kept here, so the feed
 * neither stops nor folds an event twice.
 */
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka, KafkaMessage } from "kafkajs";
import { startAgain, topicOffsets } from "../../lib/kafka.js";
import { Waiters } from "./waiters.js";

export interface FollowerOptions {
  /** The physical topic. */
  topic: string;
  /** The consumer group, before a random suffix (one group per follower, never committed). */
  groupPrefix: string;
  maxWaitTimeInMs: number;
  /** Folds one message; each is handed over once, in order, however often its consumer fails. */
  onMessage: (message: KafkaMessage) => Promise<void>;
  log?: (line: string) => void;
}

export class TopicFollower {
  /** Next offset to read, per partition. */
  private readonly position = new Map<number, bigint>();
  readonly waiters = new Waiters();
  private consumer?: Consumer;
  private readonly groupId: string;
  private stopping = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: FollowerOptions,
  ) {
    this.groupId = `${options.groupPrefix}-${randomUUID()}`;
  }

  /** Starts following; resolves when everything written before the call has been read. */
  async start(what: string): Promise<void> {
    const ends = await this.ends();
    for (const o of ends) if (!this.position.has(o.partition)) this.position.set(o.partition, BigInt(o.low));
    await this.run();
    await this.until(ends, what);
  }

  /** Resolves once everything written to the topic before the call has been read. */
  async caughtUp(what: string): Promise<void> {
    await this.until(await this.ends(), what);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private async ends(): Promise<{ partition: number; high: string; low: string }[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    return topicOffsets(admin, this.options.topic).finally(() => admin.disconnect());
  }

  private until(ends: { partition: number; high: string }[], what: string): Promise<void> {
    return this.waiters.until(
      () => ends.every((o) => (this.position.get(o.partition) ?? 0n) >= BigInt(o.high)),
      60_000,
      what,
    );
  }

  private advance(partition: number, lastOffset: string): void {
    const next = BigInt(lastOffset) + 1n;
    if (next > (this.position.get(partition) ?? 0n)) this.position.set(partition, next);
    this.waiters.wake();
  }

  private async run(): Promise<void> {
    const { topic } = this.options;
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      maxWaitTimeInMs: this.options.maxWaitTimeInMs,
    });
    this.consumer = consumer;
    // Nothing is committed, so a consumer joining starts each partition where this follower is.
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const partition of payload.memberAssignment[topic] ?? []) {
        const at = this.position.get(partition);
        if (at !== undefined) consumer.seek({ topic, partition, offset: at.toString() });
      }
    });
    // Transaction markers alone come as an empty batch: the position moves past them too.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) =>
      this.advance(payload.partition, payload.lastOffset),
    );
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.stopping || this.consumer !== consumer) return;
      this.options.log?.(
        `${topic}: its consumer stopped (${payload.error.message}) and kafkajs will not restart it; starting a new one`,
      );
      void startAgain(consumer, () => this.run(), {
        what: topic,
        stopped: () => this.stopping,
        cleanup: async () => this.consumer?.disconnect(),
        log: this.options.log,
      });
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const partition = batch.partition;
        for (const message of batch.messages) {
          // A batch kafkajs hands over again after a failure starts before the position.
          const offset = BigInt(message.offset);
          if (offset < (this.position.get(partition) ?? 0n)) continue;
          await this.options.onMessage(message);
          this.position.set(partition, offset + 1n);
        }
        this.advance(partition, batch.lastOffset());
      },
    });
  }
}
