/**
 * The host of a read model: reads catalog topics, decodes, and hands each batch of one partition to
 * a store, which writes its effects together with its checkpoint. The checkpoint lives in the store,
 * not in Kafka: on every assignment the host asks the store where it stopped and seeks there, so a
 * crash between a write and anything else can neither lose nor double an event (PostgreSQL commits
 * data and checkpoint in one transaction; MongoDB writes are guarded by position).
 *
 * The consumer group's own offsets are committed too, after the store, only so that Kafka tools
 * show the projection's lag; nothing reads them back.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer } from "kafkajs";
import { DEAD_LETTER_TOPIC, physicalTopic } from "../schemas/catalog.js";
import { DecodeError, type Codec } from "../schemas/codec.js";
import { watchProjection } from "./metrics.js";
import { deadLetterFor, deadLetterMessage, type PolityEvent } from "../schemas/reader.js";
import { startAgain, topicOffsets, whenGivenUp } from "../lib/kafka.js";

/** One event as a projection sees it: decoded, with where it sits in the log. */
export interface LoggedEvent {
  event: PolityEvent;
  /** Catalog topic name (without the deployment's prefix). */
  topic: string;
  partition: number;
  offset: bigint;
  /** The Kafka record timestamp. */
  timestamp: Date;
}

/** Where a store stopped: the next offset to read, per catalog topic and partition. */
export type Checkpoints = Map<string, bigint>;

export function checkpointKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

export interface ProjectionStore {
  /** Names the consumer group and the store's checkpoints. */
  readonly name: string;
  checkpoints(): Promise<Checkpoints>;
  /**
   * Applies the events of one topic partition, in log order, and records `next` as its checkpoint,
   * atomically or idempotently: applying a batch again must change nothing.
   */
  apply(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void>;
}

export interface ProjectionHostOptions {
  kafka: Kafka;
  codec: Codec;
  store: ProjectionStore;
  /** Catalog topic names to project. */
  topics: string[];
  topicPrefix?: string;
  /**
   * The consumer group; `<prefix>polity-projection-<store name>` unless given. A rebuild into fresh
   * targets beside the live ones needs its own, or the two would split the partitions.
   */
  groupId?: string;
  log?: (line: string) => void;
  /** How long a host behind the log may be handed nothing before its consumer is replaced; 20 s. */
  stallMs?: number;
}

/**
 * How long a host behind the log may go without kafkajs handing it a batch before its consumer is
 * replaced: past a rebalance (the session timeout is 10 s), well short of an operator noticing.
 */
const STALL_MS = 20_000;

export class ProjectionHost {
  private consumer?: Consumer;
  private dlq?: Producer;
  private admin?: Admin;
  private readonly prefix: string;
  private readonly groupId: string;
  /** Next offset to apply per physical topic partition, once known from the store. */
  private readonly next = new Map<string, bigint>();
  /** Counts assignments, so a slow checkpoint read of an older one gives way to the newer. */
  private assignments = 0;
  /** Settles once the partitions of the latest assignment have been sought to their checkpoints. */
  private ready: Promise<void> = Promise.resolve();
  /** Checkpoint moves over transaction markers still being written, per physical topic partition. */
  private readonly markers = new Map<string, Promise<void>>();
  readonly stats = { events: 0, batches: 0, deadLetters: 0 };

  private unwatch?: () => void;
  private readonly stallMs: number;
  /** When kafkajs last handed this host a batch (or joined the group): what the watchdog checks. */
  private lastDelivery = Date.now();
  private watchdog?: NodeJS.Timeout;

  constructor(private readonly options: ProjectionHostOptions) {
    this.prefix = options.topicPrefix ?? "";
    this.groupId = options.groupId ?? `${this.prefix}polity-projection-${options.store.name}`;
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  /** The read model's name, as in its metrics. */
  get name(): string {
    return this.options.store.name;
  }

  private physical(topic: string): string {
    return physicalTopic(topic, this.prefix);
  }

  private catalogName(physical: string): string {
    return physical.slice(this.prefix.length);
  }

  async start(): Promise<void> {
    const { kafka } = this.options;
    this.dlq = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.dlq.connect();
    await this.runConsumer();
    this.unwatch = watchProjection(this);
    this.watchdog = setInterval(() => void this.checkStall(), Math.min(5_000, this.stallMs));
    this.watchdog.unref();
  }

  /**
   * A consumer can stand still with kafkajs still calling it running: after a broker restart on a
   * three-node cluster it kept a coordinator that was no longer one (every offset commit refused with
   * NOT_COORDINATOR) and then waited on a rejoin, the read model behind the log all the while. So
   * when the log holds events this host has not applied and kafkajs has handed it nothing for
   * `stallMs` (20 s), a new consumer takes the old one's place. A store that is down does not
   * count: its batch is still in hand (and retried), so the consumer is not the one to replace.
   */
  private async checkStall(): Promise<void> {
    const waiting = () =>
      this.stopping || this.replacing || this.inFlight > 0 || Date.now() - this.lastDelivery < this.stallMs;
    if (waiting()) return;
    const lag = await this.lag().catch(() => undefined);
    if (!lag || waiting()) return;
    const behind = [...lag].filter(([, n]) => n > 0n);
    if (behind.length === 0) return;
    const consumer = this.consumer;
    if (!consumer) return;
    this.options.log?.(
      `projection ${this.options.store.name}: its consumer has read nothing for ${Math.round((Date.now() - this.lastDelivery) / 1000)} s while ${behind.map(([k, n]) => `${k} is ${n} behind`).join(", ")}; starting a new one`,
    );
    this.lastDelivery = Date.now();
    await this.replaceConsumer(consumer);
  }

  private stopping = false;

  /**
   * Starts the host's consumer. kafkajs gives up on a consumer after some errors it calls not
   * retriable (seen on a three-node cluster after a broker restart: "Broker 1 not found in the
   * cached metadata", then the coordinator no longer knowing the member), and the read model would
   * stand still for good; so a new consumer takes its place. Nothing is lost or doubled: positions
   * come from the store's checkpoints at every assignment, not from the group's offsets.
   */
  private async runConsumer(): Promise<void> {
    const { kafka } = this.options;
    const consumer = kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 200,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.lastDelivery = Date.now();
      void this.onAssignment(payload.memberAssignment);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      this.lastDelivery = Date.now();
      if (payload.batchSize === 0) this.onMarkersOnly(payload.topic, payload.partition, BigInt(payload.lastOffset));
    });
    whenGivenUp(
      consumer,
      {
        what: `projection ${this.options.store.name}`,
        log: this.options.log,
        ignore: () => this.stopping || this.consumer !== consumer,
      },
      () => void this.replaceConsumer(consumer),
    );
    await consumer.connect();
    await consumer.subscribe({ topics: this.options.topics.map((t) => this.physical(t)), fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 6,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  private replacing = false;

  /** Disconnects a consumer kafkajs gave up on and starts another, trying again every second. */
  private async replaceConsumer(old: Consumer): Promise<void> {
    if (this.replacing) return;
    this.replacing = true;
    try {
      await this.startAnotherConsumer(old);
    } finally {
      this.replacing = false;
      this.lastDelivery = Date.now();
    }
  }

  private async startAnotherConsumer(old: Consumer): Promise<void> {
    this.assignments++; // a checkpoint read of the old assignment gives way
    await startAgain(old, () => this.runConsumer(), {
      what: `projection ${this.options.store.name}`,
      stopped: () => this.stopping,
      cleanup: async () => this.consumer?.disconnect(),
      log: this.options.log,
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    this.assignments++; // ends a checkpoint read still trying
    this.unwatch?.();
    await this.consumer?.disconnect().catch(() => undefined);
    await this.dlq?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }

  /**
   * Events not yet applied, per catalog topic partition this host holds: the end of the log now
   * (asked of the broker, so a stalled host shows a growing lag) minus the checkpoint.
   */
  async lag(): Promise<Map<string, bigint>> {
    if (!this.admin) {
      this.admin = this.options.kafka.admin();
      await this.admin.connect();
    }
    const out = new Map<string, bigint>();
    for (const topic of this.options.topics) {
      const physical = this.physical(topic);
      for (const { partition, high } of await topicOffsets(this.admin, physical)) {
        const next = this.next.get(checkpointKey(physical, partition));
        if (next === undefined) continue;
        const end = BigInt(high);
        out.set(checkpointKey(topic, partition), end > next ? end - next : 0n);
      }
    }
    return out;
  }

  /** Seeks every assigned partition to the store's checkpoint (the start of the log when none). */
  private onAssignment(assignment: Record<string, number[]>): void {
    const generation = ++this.assignments;
    this.ready = (async () => {
      // The store may be down when the assignment comes (a rebalance during an outage): ask again
      // until it answers, or until a newer assignment takes over. Batches wait for this meanwhile.
      let stored: Checkpoints | undefined;
      for (let attempt = 1; stored === undefined; attempt++) {
        try {
          stored = await this.options.store.checkpoints();
        } catch (e) {
          if (generation !== this.assignments) return;
          if (attempt === 1 || attempt % 10 === 0)
            this.options.log?.(
              `projection ${this.options.store.name}: reading its checkpoints failed (${(e as Error).message}); trying again every second`,
            );
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
      if (generation !== this.assignments) return;
      this.next.clear();
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) {
          const at = stored.get(checkpointKey(this.catalogName(topic), partition)) ?? 0n;
          this.next.set(checkpointKey(topic, partition), at);
          this.consumer!.seek({ topic, partition, offset: at.toString() });
        }
      }
    })();
  }

  /**
   * Transactional writers end every transaction with a commit marker, and kafkajs never hands a batch
   * of markers alone to eachBatch. Without this the checkpoint of an idle partition would stay one
   * short of the end for ever: the lag metric would never reach zero and a rebuild could not tell
   * that it has caught up. So the checkpoint moves past them through the store, with no events.
   */
  private onMarkersOnly(topic: string, partition: number, lastOffset: bigint): void {
    const key = checkpointKey(topic, partition);
    const run = (async () => {
      await this.ready;
      const expected = this.next.get(key);
      const next = lastOffset + 1n;
      if (expected === undefined || next <= expected) return;
      await this.options.store.apply(this.catalogName(topic), partition, [], next);
      if ((this.next.get(key) ?? 0n) < next) this.next.set(key, next);
    })().catch((e: Error) => {
      // Harmless: the next batch of data carries the checkpoint past the markers anyway.
      this.options.log?.(`projection ${this.options.store.name}: ${topic}[${partition}] markers: ${e.message}`);
    });
    this.markers.set(key, run);
  }

  /** Batches handed over and not yet done: a consumer waiting on its store is not standing still. */
  private inFlight = 0;

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    this.lastDelivery = Date.now();
    this.inFlight++;
    try {
      await this.applyBatch(payload);
    } finally {
      this.inFlight--;
      this.lastDelivery = Date.now();
    }
  }

  private async applyBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    await this.ready;
    if (isStale()) return;
    const key = checkpointKey(batch.topic, batch.partition);
    await this.markers.get(key);
    const expected = this.next.get(key);
    if (expected === undefined) return;
    const fetched = BigInt((batch as unknown as { fetchedOffset: string }).fetchedOffset);
    if (fetched > expected) {
      // Fetched from the group's offset before our seek to the store's checkpoint took effect.
      this.consumer!.seek({ topic: batch.topic, partition: batch.partition, offset: expected.toString() });
      return;
    }
    const events: LoggedEvent[] = [];
    for (const message of batch.messages) {
      const offset = BigInt(message.offset);
      if (offset < expected) continue;
      try {
        const decoded = await this.options.codec.decode(message.value);
        events.push({
          event: { type: decoded.type, value: decoded.value } as unknown as PolityEvent,
          topic: this.catalogName(batch.topic),
          partition: batch.partition,
          offset,
          timestamp: new Date(Number(message.timestamp)),
        });
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e; // registry unreachable: the batch is read again
        await this.deadLetter(batch.topic, batch.partition, message, e);
      }
    }
    const next = BigInt(batch.lastOffset()) + 1n;
    if (next <= expected) {
      resolveOffset(batch.lastOffset()); // all of it was applied before
      return;
    }
    // A slow store (FerretDB, a big batch queued behind other partitions) must not cost the
    // group membership: keep heartbeating while it writes.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 2_000);
    try {
      await this.options.store.apply(this.catalogName(batch.topic), batch.partition, events, next);
    } catch (e) {
      // Not resolving the offset reads the batch again; say so, or a stalled partition is silent.
      this.options.log?.(
        `projection ${this.options.store.name}: ${batch.topic}[${batch.partition}] at ${expected}: ${(e as Error).message}; retrying in 1 s`,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      return;
    } finally {
      clearInterval(beat);
    }
    this.next.set(key, next);
    this.stats.events += events.length;
    this.stats.batches++;
    resolveOffset(batch.lastOffset());
    // The group's offsets are only for operators (positions come from the store's checkpoints): a
    // commit refused because the coordinator dropped the member (a broker or controller restart)
    // must not stop the consumer, as kafkajs does for an error it wraps as not retriable; the
    // heartbeat then fails with UNKNOWN_MEMBER_ID, on which kafkajs rejoins the group.
    await this.consumer!.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: next.toString() },
    ]).catch((e: Error) => this.options.log?.(`projection ${this.options.store.name}: offset commit: ${e.message}`));
    await heartbeat();
  }

  /** At least once, like every dead letter outside a transaction; the original offset identifies it. */
  private async deadLetter(
    topic: string,
    partition: number,
    message: EachBatchPayload["batch"]["messages"][number],
    error: DecodeError,
  ): Promise<void> {
    const letter = deadLetterFor({ topic, partition, consumerGroup: this.groupId }, message, error);
    await this.dlq!.send({
      topic: this.physical(DEAD_LETTER_TOPIC),
      messages: [await deadLetterMessage(this.options.codec, letter)],
    });
    this.stats.deadLetters++;
  }
}
