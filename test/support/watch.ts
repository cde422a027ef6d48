/** Reads Polity topics from the beginning into memory, decoded, for tests to wait on and inspect. */
import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";
import type { Codec } from "../../schemas/codec.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { EventReader, typed, type PolityEvent, type ReadEvent } from "../../schemas/reader.js";

export interface Seen {
  event: PolityEvent;
  topic: string;
  partition: number;
  offset: bigint;
}

export class LogWatcher {
  readonly seen: Seen[] = [];
  /**
   * Offsets already seen per topic partition. The watcher's group reads at least once: after a
   * broker restart or a rebalance it may be handed records it has already had, and counting them
   * twice would report a doubled event that the log holds once.
   */
  private readonly positions = new Set<string>();
  /** How many records were handed to the watcher again (and skipped). */
  redelivered = 0;
  private reader?: EventReader;
  private listeners: (() => void)[] = [];

  static async start(kafka: Kafka, codec: Codec, prefix: string, topics: string[]): Promise<LogWatcher> {
    const w = new LogWatcher();
    w.reader = await EventReader.start({
      kafka,
      codec,
      groupId: `${prefix}watch-${randomUUID()}`,
      topics: topics.map((t) => physicalTopic(t, prefix)),
      topicPrefix: prefix,
      fromBeginning: true,
      handle: async (e: ReadEvent) => {
        const at = `${e.topic}:${e.partition}@${e.offset}`;
        if (w.positions.has(at)) {
          w.redelivered++;
          return;
        }
        w.positions.add(at);
        w.seen.push({ event: typed(e), topic: e.topic, partition: e.partition, offset: BigInt(e.offset) });
        for (const l of [...w.listeners]) l();
      },
    });
    return w;
  }

  of(goalId: string): PolityEvent[] {
    return this.seen.map((s) => s.event).filter((e) => (e.value as { goalId?: string }).goalId === goalId);
  }

  types(goalId: string): string[] {
    return this.of(goalId).map((e) => e.type);
  }

  /** Waits until `done` holds, or fails after `timeoutMs` saying what it waited for and what it saw. */
  until<T>(what: string, done: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
    const now = done();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = done();
        if (v) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.seen.length} events seen`));
      }, timeoutMs);
      this.listeners.push(check);
    });
  }

  /** The goal's final event (GoalCompleted, GoalFailed, GoalRejected or GoalStopped). */
  final(goalId: string, timeoutMs = 60_000): Promise<PolityEvent> {
    return this.until(
      `the end of goal ${goalId}`,
      () =>
        this.of(goalId).find((e) => ["GoalCompleted", "GoalFailed", "GoalRejected", "GoalStopped"].includes(e.type)),
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await this.reader?.stop();
  }
}
