/**
 * The live feed behind GraphQL subscriptions: one Kafka consumer per gateway instance, in a consumer
 * group of its own (so every instance sees every event and delivers it to its own subscribers),
 * reading committed events from the end of the log onwards. Each subscriber gets an async iterator
 * over the events its filter accepts, with a bounded buffer: a subscriber that stops reading is cut
 * off with an error rather than growing the gateway's memory.
 *
 * The feed also keeps the most recent events (HISTORY_EVENTS of them) so a subscription can start
 * with what its filter accepts among them (`replay`): a client that submits a goal and then
 * subscribes to it gets the events written in between, even when the goal completed meanwhile.
 */
import { randomUUID } from "node:crypto";
import type { Kafka, KafkaMessage } from "kafkajs";
import { physicalTopic } from "../schemas/catalog.js";
import { DecodeError, type Codec } from "../schemas/codec.js";
import type { PolityEvent } from "../schemas/reader.js";
import { TopicFollower } from "../processors/host/follower.js";

export const LIVE_TOPICS = [
  "polity.goals.events",
  "polity.tasks.events",
  "polity.agents.events",
  "polity.governance.events",
] as const;

export interface LiveEvent {
  event: PolityEvent;
  /** Catalog topic name. */
  topic: string;
  partition: number;
  offset: string;
  /** When the broker appended the record (the log's commit time, for delivery latency). */
  loggedAt: Date;
  /** Set on events a subscription got from the recent history, written before it started. */
  replayed?: boolean;
}

/** Events a subscriber may hold unread before it is cut off. */
export const SUBSCRIBER_BUFFER = 10_000;

/** Recent events kept for replay (all topics, all tenants). */
export const HISTORY_EVENTS = 10_000;

/** A subscriber's stream of events. */
export interface LiveSubscription extends AsyncIterableIterator<LiveEvent> {
  /** Events accepted so far, replayed ones included. */
  readonly received: number;
  /** Settles at the first accepted event. */
  readonly first: Promise<void>;
  /** Takes no more events: the stream ends once those already taken are read. */
  end(): void;
  /** Stops at once: nothing more is delivered. */
  return(): Promise<IteratorResult<LiveEvent>>;
}

interface Subscriber {
  accept(e: LiveEvent): boolean;
  push(e: LiveEvent): void;
  /** Ends the subscription with an error: the stream throws it once the events already taken are read. */
  fail(error: Error): void;
}

export class LiveFeed {
  private readonly follower: TopicFollower;
  private readonly subscribers = new Set<Subscriber>();
  private history: LiveEvent[] = [];
  readonly stats = { received: 0, delivered: 0, cutOff: 0 };
  private readyResolve!: () => void;
  /** Settles once the consumer holds its partitions, so nothing published after it is missed. */
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));

  /**
   * Reads committed events from the end of the log as of `start` (a fresh group would otherwise
   * resolve "latest" only at its first fetch, and miss what is written in between). The follower
   * keeps the next offset per partition: a consumer that replaces one kafkajs gave up on delivers
   * nothing twice and misses nothing.
   */
  constructor(
    kafka: Kafka,
    private readonly codec: Codec,
    private readonly prefix = "",
    instanceId = randomUUID().slice(0, 8),
    log: (line: string) => void = () => undefined,
  ) {
    this.follower = new TopicFollower(kafka, {
      topics: LIVE_TOPICS.map((t) => physicalTopic(t, prefix)),
      from: "end",
      groupId: `${prefix}polity-gateway-live-${instanceId}`,
      consumer: { maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1_000 },
      name: "gateway live feed",
      log,
      onJoin: () => this.readyResolve(),
      onMessage: (topic, partition, m) => this.deliver(topic, partition, m),
    });
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  start(): Promise<void> {
    return this.follower.start("starting the live feed");
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  private async deliver(physical: string, partition: number, m: KafkaMessage): Promise<void> {
    let event: PolityEvent;
    try {
      const decoded = await this.codec.decode(m.value);
      event = { type: decoded.type, value: decoded.value } as unknown as PolityEvent;
    } catch (e) {
      // The processors dead-letter what nobody can read; subscribers just skip it. Anything else
      // (the registry unreachable) fails the batch, which kafkajs hands over again.
      if (e instanceof DecodeError) return;
      throw e;
    }
    this.stats.received++;
    this.publish({
      event,
      topic: physical.slice(this.prefix.length),
      partition,
      offset: m.offset,
      loggedAt: new Date(Number(m.timestamp)),
    });
  }

  private publish(e: LiveEvent): void {
    this.history.push(e);
    if (this.history.length >= HISTORY_EVENTS * 1.25) this.history = this.history.slice(-HISTORY_EVENTS);
    for (const s of this.subscribers) {
      let accepted: boolean;
      try {
        accepted = s.accept(e);
      } catch (error) {
        s.fail(new Error(`subscription ended: its filter failed (${(error as Error).message})`));
        continue;
      }
      if (accepted) {
        s.push(e);
        this.stats.delivered++;
      }
    }
  }

  /**
   * The events `accept` lets through, from now on (with `replay`, first those of the recent history),
   * until the iterator is returned (the client went away), `end` is called, or `until` says the
   * stream is complete after an event.
   */
  subscribe(
    accept: (e: LiveEvent) => boolean,
    until?: (e: LiveEvent) => boolean,
    options: { replay?: boolean } = {},
  ): LiveSubscription {
    const queue: LiveEvent[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    let failure: Error | null = null;
    let received = 0;
    let firstSeen!: () => void;
    const first = new Promise<void>((r) => (firstSeen = r));
    const sub: Subscriber = {
      accept,
      push: (e) => {
        if (done) return;
        if (queue.length >= SUBSCRIBER_BUFFER) {
          failure = new Error(
            `subscription cut off: more than ${SUBSCRIBER_BUFFER} events waited unread; subscribe again with a narrower filter or read faster`,
          );
          this.stats.cutOff++;
          this.subscribers.delete(sub);
        } else {
          queue.push(e);
          received++;
          firstSeen();
        }
        wake?.();
      },
      fail: (error) => {
        failure = error;
        this.subscribers.delete(sub);
        wake?.();
      },
    };
    // Replay and registration happen in one synchronous step: no event falls between them.
    if (options.replay) for (const e of this.history) if (accept(e)) sub.push({ ...e, replayed: true });
    this.subscribers.add(sub);
    const stop = (drain: boolean) => {
      done = true;
      if (!drain) queue.length = 0;
      this.subscribers.delete(sub);
      wake?.();
    };
    const iterator: LiveSubscription = {
      [Symbol.asyncIterator]: () => iterator,
      get received() {
        return received;
      },
      first,
      end: () => stop(true),
      next: async () => {
        for (;;) {
          if (queue.length > 0) {
            const value = queue.shift()!;
            // Deliver the closing event, then end the stream on the next call (whatever else came).
            if (until?.(value)) stop(false);
            return { value, done: false };
          }
          if (failure) throw failure;
          if (done) return { value: undefined, done: true };
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
      return: async () => {
        stop(false);
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }
}
