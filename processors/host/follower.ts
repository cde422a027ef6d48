/**
 * Follows topics from their beginning or their end, for a reader that keeps its own positions
 * instead of committing them: the feeds every process needs whole (the agent directory, the policy
 * book) and the gateway's live feed. A consumer group of its own, the next offset to read kept here
 * per partition, and waiters woken after every batch.
 *
 * When kafkajs gives up on the consumer (a crash it does not restart from, seen after a broker
 * restart), a new one takes its place and carries on from the positions kept here, so the reader
 * neither stops nor handles a record twice.
 */
import type { Consumer, ConsumerConfig, Kafka, KafkaMessage } from "kafkajs";
import { startAgain, topicOffsets, whenGivenUp } from "../../lib/kafka.js";
import { Waiters } from "./waiters.js";

export interface FollowerOptions {
  /** The physical topics. */
  topics: readonly string[];
  /** Where reading starts: every record (`beginning`), or what is written after `start` (`end`). */
  from: "beginning" | "end";
  /** The consumer group: one per follower, nothing committed to it. */
  groupId: string;
  /** Consumer settings beside the group (maxWaitTimeInMs, session timeout, ...). */
  consumer?: Omit<ConsumerConfig, "groupId" | "readUncommitted">;
  /** Handles one record; each is handed over once, in order per partition, however often its consumer fails. */
  onMessage: (topic: string, partition: number, message: KafkaMessage) => Promise<void>;
  /** How log lines name this reader; the topics when absent. */
  name?: string;
  /** Called each time a consumer has joined and been placed at the follower's positions. */
  onJoin?: () => void;
  log?: (line: string) => void;
}

export class TopicFollower {
  /** Next offset to read, per `topic:partition`. */
  private readonly position = new Map<string, bigint>();
  readonly waiters = new Waiters();
  private consumer?: Consumer;
  private stopping = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: FollowerOptions,
  ) {}

  /** Starts following; resolves when everything written before the call has been read (at once from the end). */
  async start(what: string): Promise<void> {
    const ends = await this.ends();
    const from = this.options.from === "end" ? "high" : "low";
    for (const o of ends) if (!this.position.has(o.key)) this.position.set(o.key, BigInt(o[from]));
    await this.run();
    await this.until(ends, what);
  }

  /** Resolves once everything written to the topics before the call has been read. */
  async caughtUp(what: string): Promise<void> {
    await this.until(await this.ends(), what);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private async ends(): Promise<{ key: string; high: string; low: string }[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const out: { key: string; high: string; low: string }[] = [];
      for (const topic of this.options.topics)
        for (const o of await topicOffsets(admin, topic)) out.push({ key: `${topic}:${o.partition}`, ...o });
      return out;
    } finally {
      await admin.disconnect();
    }
  }

  private until(ends: { key: string; high: string }[], what: string): Promise<void> {
    return this.waiters.until(
      () => ends.every((o) => (this.position.get(o.key) ?? 0n) >= BigInt(o.high)),
      60_000,
      what,
    );
  }

  private async run(): Promise<void> {
    const consumer = this.kafka.consumer({
      ...this.options.consumer,
      groupId: this.options.groupId,
      readUncommitted: false,
    });
    this.consumer = consumer;
    // Nothing is committed, so a consumer joining starts each partition where this follower is.
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
        for (const partition of partitions) {
          const at = this.position.get(`${topic}:${partition}`);
          if (at !== undefined) consumer.seek({ topic, partition, offset: at.toString() });
        }
      }
      this.options.onJoin?.();
    });
    // After every batch, transaction markers alone included: the position moves past it.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = `${payload.topic}:${payload.partition}`;
      const next = BigInt(payload.lastOffset) + 1n;
      if (next > (this.position.get(key) ?? 0n)) this.position.set(key, next);
      this.waiters.wake();
    });
    const what = this.options.name ?? this.options.topics.join(", ");
    const { log } = this.options;
    whenGivenUp(consumer, { what, log, ignore: () => this.stopping || this.consumer !== consumer }, () => {
      void startAgain(consumer, () => this.run(), {
        what,
        log,
        stopped: () => this.stopping,
        cleanup: async () => this.consumer?.disconnect(),
      });
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.options.topics], fromBeginning: this.options.from === "beginning" });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const key = `${batch.topic}:${batch.partition}`;
        for (const message of batch.messages) {
          // A batch kafkajs hands over again after a failure starts before the position.
          const offset = BigInt(message.offset);
          if (offset < (this.position.get(key) ?? 0n)) continue;
          await this.options.onMessage(batch.topic, batch.partition, message);
          this.position.set(key, offset + 1n);
        }
      },
    });
  }
}
