/**
 * The exactly-once engine: a Kafka consumer group that runs one role's decider exactly once per
 * input. It restores, decides and commits; everything else (timers, side effects, what happens when
 * a partition goes live) plugs in as an extension (extension.ts), and a role says which (roles/).
 *
 * Per partition number p (a "slot"; every input topic is keyed by goal id and co-partitioned):
 *
 * 1. Restore. The slot's transactional producer (id `<group>-p<p>`) is opened first, which fences a
 *    zombie owner of p and aborts its open transaction. The state topics of p are then read from
 *    offset 0 to their end (the high watermark: every record written before the restore, so every
 *    transaction committed before it, also one behind another producer's open transaction) and
 *    folded with `evolve`: the log is the only source of truth. Inputs at or after the group's
 *    committed offset were not acknowledged; they are kept aside.
 * 2. Decide again on those unacknowledged inputs, now that the state includes everything the log
 *    holds (the tier's own earlier output among it), so nothing already decided is decided twice.
 * 3. Live. For each batch: fold each input, ask the decider, fold its decisions at once (so the
 *    next input sees them), and write the decisions and the consumed offsets in one transaction.
 *
 * A crash anywhere loses nothing (offsets move only with the output) and duplicates nothing (an
 * aborted transaction is invisible to read_committed readers, and a repeat input finds its
 * effects already in the state). A failed transaction throws the slot's state away and restores.
 */
import { startAgain, topicOffsets, whenGivenUp } from "../../lib/kafka.js";
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import { buildEnvelope, HEADER, type MessageContext } from "../../producers/envelope.js";
import { EventWriter, type OutgoingMessage } from "../../producers/writer.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { DecodeError, type Codec } from "../../schemas/codec.js";
import type { DeadLetter, MessageTypeName } from "../../schemas/generated/types.js";
import { deadLetterFor, type PolityEvent } from "../../schemas/reader.js";
import {
  type Decision,
  type DecisionContext,
  isEvent,
  type ExecutionFinished,
  type SideEffectOutcome,
  type TierDecider,
  type TierInput,
} from "../domain/decider.js";
import { scopedContext } from "../domain/policies/book.js";
import { SYSTEM_TENANT } from "../domain/kernel/tenancy.js";
import { evolve, initialState, type HierarchyState } from "../domain/kernel/state.js";
import { taskKey } from "../domain/kernel/keys.js";
import { coPartitionedAssigner } from "../host/assignor.js";
import type { EngineView, Extension, LiveSlot } from "./extension.js";
import { CommittedFloor } from "./floor.js";

export interface TierTopics {
  /** Catalog names of the topics the tier consumes. */
  inputs: readonly string[];
  /** Those of the inputs whose events make up the state (commands do not). */
  state: readonly string[];
}

export interface HostOptions {
  kafka: Kafka;
  codec: Codec;
  decider: TierDecider;
  topics: TierTopics;
  /** The consumer group, before the topic prefix; `polity-<role>` when absent. */
  group?: string;
  /** What every decision is given beside the time: the directory, policies, limits, the agents acted for. */
  context: Omit<DecisionContext, "now">;
  /** Whether this host acts for an agent now (metrics); `context.hosts` when absent. */
  actsFor?: (agentId: string) => boolean;
  extensions?: readonly Extension[];
  topicPrefix?: string;
  /** Partitions processed at once (kafkajs partitionsConsumedConcurrently); default 6, every partition. */
  concurrency?: number;
  log?: (line: string) => void;
}

/** The transactional id of a group's partition: opening it fences the partition's previous owner. */
export function transactionalIdFor(group: string, partition: number | string): string {
  return `${group}-p${partition}`;
}

interface RestoreCursor {
  /** The group's committed offset: inputs from here on are decided again. */
  committed: bigint;
  /** The end of the partition when the slot was opened. */
  end: bigint;
  /** Next offset to fold. */
  next: bigint;
}

interface Slot {
  partition: number;
  ready: Promise<void>;
  writer?: EventWriter;
  state: HierarchyState;
  live: boolean;
  cursors: Map<string, RestoreCursor>;
  /** Unacknowledged inputs found while restoring, decided once the restore is complete. */
  tail: { topic: string; offset: bigint; input: PolityEvent; timestamp: number }[];
  /** Unreadable unacknowledged messages found while restoring, dead-lettered when going live. */
  pendingLetters: DeadLetter[];
  /** Offsets consumed but not yet committed (physical topic -> next offset). */
  uncommitted: Map<string, string>;
  /** Decided but not yet written: the slot's next transaction carries all of it. */
  pending: { out: OutgoingMessage[]; letters: DeadLetter[] };
  /** The transaction in flight, if any; inputs decided meanwhile wait for the next one. */
  committing: Promise<boolean> | null;
  closed: boolean;
  /** Side effects running here (a worker's attempts by task key and attempt, the president's plans), by key. */
  running: Map<string, AbortController>;
  finished: SideEffectOutcome[];
  flushScheduled: boolean;
  /** When the hash-chain heads of settled goals were last let go (forgetSettledChains). */
  chainsPrunedAt: number;
  offsetTimer?: NodeJS.Timeout;
  /** The slot as extensions see it. */
  view?: LiveSlot;
}

/** How long offsets of inputs that decided nothing may wait for a transaction to carry them. */
const OFFSET_FLUSH_MS = 1_000;
const CHAIN_PRUNE_MS = 5_000;
/** Decided messages a partition may hold unwritten before it stops fetching. */
const MAX_PENDING = 5_000;
/**
 * How long a restore keeps refusing a view of the log that ends before this host's own commits
 * (floor.ts). A broker back from a stall catches up within a second or two; a log that really lost
 * committed records (an unclean leader election) never will, and is then restored as it is.
 */
const STALE_VIEW_LIMIT_MS = 60_000;

const SKIP = Symbol("skip");

export class ExactlyOnceHost {
  private consumer?: Consumer;
  private admin?: Admin;
  private readonly slots = new Map<number, Slot>();
  private readonly groupId: string;
  private readonly prefix: string;
  private readonly stateTopics: Set<string>;
  private readonly extensions: readonly Extension[];
  private readonly log: (line: string) => void;
  /** The host as its extensions see it. */
  private readonly view: EngineView;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** What this host committed, which a restore's view of the log must include (floor.ts). */
  private readonly floor = new CommittedFloor();
  /** When each partition's restores began finding the log behind the floor. */
  private readonly staleSince = new Map<number, number>();
  /** Counters for progress lines, tests and benchmarks. */
  readonly stats = { inputs: 0, decisions: 0, transactions: 0, deadLetters: 0, restores: 0 };
  /** Messages this host wrote, by type. */
  readonly written = new Map<string, number>();

  constructor(private readonly options: HostOptions) {
    this.prefix = options.topicPrefix ?? "";
    this.groupId = `${this.prefix}${options.group ?? `polity-${options.decider.role}`}`;
    this.stateTopics = new Set(options.topics.state.map((t) => physicalTopic(t, this.prefix)));
    this.extensions = options.extensions ?? [];
    this.log = options.log ?? (() => undefined);
    this.view = {
      role: options.decider.role,
      reads: options.decider.reads,
      liveSlots: () => this.liveSlots().map((slot) => this.slotView(slot)),
      log: this.log,
    };
  }

  get role(): string {
    return this.options.decider.role;
  }

  async start(): Promise<void> {
    const { kafka } = this.options;
    // One admin client for the host: every partition it opens reads offsets through it. Its end
    // offsets are high watermarks (every record written), not last stable offsets: those stop
    // before the first open transaction of a partition, and a restore that took one for the end of
    // the log would miss what was committed after it, this host's own decisions among it
    // (test/integration/recovery.test.ts, "a partition taken over while ... open").
    this.admin = kafka.admin({ readUncommitted: true });
    await this.admin.connect();
    await this.runConsumer();
    for (const extension of this.extensions) {
      extension.start?.(this.view);
      const timer = extension.timer;
      if (!timer) continue;
      const intervalMs = typeof timer.intervalMs === "number" ? timer.intervalMs : timer.intervalMs();
      const handle = setInterval(() => {
        if (!this.stopping) timer.fire(this.view);
      }, intervalMs);
      handle.unref?.();
      this.timers.push(handle);
    }
  }

  private async runConsumer(): Promise<void> {
    const consumer = this.options.kafka.consumer({
      groupId: this.groupId,
      partitionAssigners: [coPartitionedAssigner],
      readUncommitted: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 200,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => this.onBatchEnd(payload));
    whenGivenUp(
      consumer,
      { what: this.role, log: this.log, ignore: () => this.stopping || this.consumer !== consumer },
      () => void this.replaceConsumer(consumer),
    );
    await consumer.connect();
    await consumer.subscribe({
      topics: this.options.topics.inputs.map((t) => physicalTopic(t, this.prefix)),
      fromBeginning: true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.concurrency ?? 6,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  /**
   * kafkajs gave up on the consumer (a crash it does not restart from). Its partitions are let go
   * (what was decided and not written is decided again) and a new consumer joins the group; each
   * partition it is given is restored from the log, as after a process restart. Until then the
   * tier counts as down (metrics).
   */
  private async replaceConsumer(old: Consumer): Promise<void> {
    this.crashed = true;
    for (const slot of this.slots.values()) void this.close(slot);
    this.slots.clear();
    await startAgain(old, () => this.runConsumer(), {
      what: this.role,
      stopped: () => this.stopping,
      cleanup: async () => this.consumer?.disconnect(),
      log: this.log,
    });
    this.crashed = false;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const extension of this.extensions) extension.stop?.();
    // Leave with every consumed offset committed, so a successor has nothing to decide again.
    await Promise.all(
      [...this.slots.values()].map((slot) => (slot.live && !slot.closed ? this.flush(slot, true) : undefined)),
    );
    await this.consumer?.disconnect().catch(() => undefined);
    await Promise.all([...this.slots.values()].map((s) => this.close(s)));
    this.slots.clear();
    await this.admin?.disconnect().catch(() => undefined);
  }

  /** Partitions restored from the log and deciding live (for readiness checks). */
  get livePartitions(): number {
    return [...this.slots.values()].filter((s) => s.live && !s.closed).length;
  }

  // ---- metrics: what processors/host/metrics.ts reads at scrape time ---------------------------

  private crashed = false;

  /** Started, not stopped, and its consumer not crashed for good. */
  get up(): boolean {
    return this.consumer !== undefined && !this.stopping && !this.crashed;
  }

  /** Whether this host acts for an agent now (a silenced one it does not). */
  actsFor(agentId: string): boolean {
    return (this.options.actsFor ?? this.options.context.hosts)(agentId);
  }

  /**
   * The tier's consumer lag, per input topic (catalog name) and partition: the log end minus the
   * group's committed offset, in offsets (transaction markers count too). The whole group's,
   * whichever member asks.
   */
  async lag(): Promise<{ group: string; topic: string; partition: number; lag: number }[]> {
    if (!this.admin || !this.up) return [];
    const inputs = this.options.topics.inputs;
    const physical = inputs.map((t) => physicalTopic(t, this.prefix));
    const committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics: physical });
    const out: { group: string; topic: string; partition: number; lag: number }[] = [];
    for (const [i, topic] of physical.entries()) {
      const done = committed.find((t) => t.topic === topic)?.partitions ?? [];
      for (const { partition, high, low } of await topicOffsets(this.admin, topic)) {
        const c = done.find((p) => p.partition === partition)?.offset;
        const from = c === undefined || c === "-1" ? BigInt(low) : BigInt(c);
        const lag = BigInt(high) - from;
        out.push({ group: this.groupId, topic: inputs[i]!, partition, lag: lag > 0n ? Number(lag) : 0 });
      }
    }
    return out;
  }

  // ---- what extensions see ---------------------------------------------------------------------

  private slotView(slot: Slot): LiveSlot {
    slot.view ??= {
      partition: slot.partition,
      get state() {
        return slot.state;
      },
      decide: (inputs) => {
        const before = slot.pending.out.length;
        this.decide(slot, inputs, []);
        return slot.pending.out.length - before;
      },
      write: (decisions) => {
        slot.pending.out.push(...decisions.map((d) => this.outgoing(slot, d, null)));
        void this.flush(slot);
      },
      startSideEffects: () => this.startSideEffects(slot),
      commit: () => void this.flush(slot),
    };
    return slot.view;
  }

  private liveSlots(): Slot[] {
    return [...this.slots.values()].filter((s) => s.live && !s.closed).sort((a, b) => a.partition - b.partition);
  }

  // ---- assignment and restore ------------------------------------------------------------------

  private onAssignment(assignment: Record<string, number[]>): void {
    const now = new Set(Object.values(assignment).flat());
    for (const [p, slot] of this.slots) {
      // A slot still restoring restarts: the rebalance reset its fetch positions.
      if (!now.has(p) || !slot.live) {
        this.slots.delete(p);
        void this.close(slot);
      }
    }
    for (const p of now) if (!this.slots.has(p)) this.open(p);
    this.log(`${this.role}: assigned partitions [${[...now].sort((a, b) => a - b).join(", ")}]`);
  }

  private open(partition: number): void {
    const slot: Slot = {
      partition,
      ready: Promise.resolve(),
      state: initialState(),
      live: false,
      cursors: new Map(),
      tail: [],
      pendingLetters: [],
      uncommitted: new Map(),
      pending: { out: [], letters: [] },
      committing: null,
      closed: false,
      running: new Map(),
      finished: [],
      flushScheduled: false,
      chainsPrunedAt: 0,
    };
    slot.ready = this.prepare(slot);
    // A partition that could not open is opened again here, not when its next batch arrives: a
    // partition whose inputs are all read gets no batch, and would stay closed until new input came
    // (seen after a broker restart: offsetFetch answers NOT_COORDINATOR_FOR_GROUP while the group
    // coordinator loads, and the goals of that partition waited four minutes). Handling the
    // rejection here also keeps it from ending the process as an unhandled one.
    slot.ready.catch((e: Error) => {
      if (slot.closed || this.stopping) return;
      this.log(`${this.role}: partition ${partition}: could not open (${e.message}); trying again in 0.5 s`);
      setTimeout(() => this.restart(slot), 500);
    });
    this.slots.set(partition, slot);
  }

  private async prepare(slot: Slot): Promise<void> {
    const { kafka, codec } = this.options;
    this.stats.restores++;
    // Opening the producer fences a previous owner of this partition and aborts its transaction,
    // so the end offsets read next cannot move under an orphaned transaction.
    slot.writer = await EventWriter.connect(kafka, codec, {
      transactionalId: transactionalIdFor(this.groupId, slot.partition),
      topicPrefix: this.prefix,
    });
    const admin = this.admin!;
    const topics = [...this.stateTopics];
    const inputs = this.options.topics.inputs.map((t) => physicalTopic(t, this.prefix));
    const committed = await admin.fetchOffsets({ groupId: this.groupId, topics: inputs });
    // A command topic resumes at its committed offset: after a failed transaction, inputs read
    // past it were never acknowledged and must be read again.
    for (const topic of inputs.filter((t) => !this.stateTopics.has(t))) {
      const c = committed.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === slot.partition);
      if (c && c.offset !== "-1") this.consumer!.seek({ topic, partition: slot.partition, offset: c.offset });
    }
    const ranges = new Map<string, { low: bigint; high: bigint }>();
    for (const topic of topics) {
      const end = (await topicOffsets(admin, topic)).find((o) => o.partition === slot.partition)!;
      ranges.set(topic, { low: BigInt(end.low), high: BigInt(end.high) });
    }
    this.refuseStaleView(slot.partition, new Map([...ranges].map(([topic, r]) => [topic, r.high])));
    for (const [topic, { low, high }] of ranges) {
      const c = committed.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === slot.partition);
      const committedAt = c && c.offset !== "-1" ? BigInt(c.offset) : low;
      slot.cursors.set(topic, { committed: committedAt, end: high, next: low });
      this.consumer!.seek({ topic, partition: slot.partition, offset: low.toString() });
    }
    for (const extension of this.extensions) await extension.beforeLive?.();
    await this.goLiveIfRestored(slot);
  }

  /**
   * Throws when the end offsets a restore was given lie before records this host committed to the
   * partition (floor.ts): a broker answering from before a stall. The slot then opens again (open's
   * retry), and asks again, until the answers catch up or STALE_VIEW_LIMIT_MS has passed.
   */
  private refuseStaleView(partition: number, ends: ReadonlyMap<string, bigint>): void {
    const behind = this.floor.behind(partition, ends);
    if (behind.length === 0) {
      this.staleSince.delete(partition);
      return;
    }
    const since = this.staleSince.get(partition) ?? Date.now();
    this.staleSince.set(partition, since);
    if (Date.now() - since < STALE_VIEW_LIMIT_MS)
      throw new Error(`the log answered from before this process's own commits (${behind.join("; ")}); asking again`);
    this.staleSince.delete(partition);
    this.log(
      `${this.role}: partition ${partition}: the log still ends before this process's own commits after ${STALE_VIEW_LIMIT_MS / 1000} s ` +
        `(${behind.join("; ")}): records were lost (an unclean leader election?); restoring from the log as it is`,
    );
  }

  /**
   * kafkajs reports batches it filtered out entirely (transaction markers, aborted records) here and
   * not to eachBatch; they hold nothing to fold, but the restore must move past them. Batches with
   * messages are handled in onBatch only: one dropped there (stale after a seek) must not count.
   */
  private onBatchEnd(payload: {
    topic: string;
    partition: number;
    firstOffset: string | null;
    lastOffset: string;
    batchSize: number;
  }) {
    const slot = this.slots.get(payload.partition);
    const cursor = slot?.cursors.get(payload.topic);
    if (!slot || slot.live || !cursor || payload.firstOffset === null || payload.batchSize > 0) return;
    if (BigInt(payload.firstOffset) <= cursor.next) {
      const after = BigInt(payload.lastOffset) + 1n;
      if (after > cursor.next) cursor.next = after;
      void this.goLiveIfRestored(slot);
    }
  }

  private restored(slot: Slot): boolean {
    return [...slot.cursors.values()].every((c) => c.next >= c.end);
  }

  private async goLiveIfRestored(slot: Slot): Promise<void> {
    // A tier without state topics (the scaler) is restored as soon as its partition is open.
    if (slot.live || slot.closed || !slot.writer || (slot.cursors.size === 0 && this.stateTopics.size > 0)) return;
    if (!this.restored(slot)) return;
    slot.live = true;
    for (const [topic, c] of slot.cursors) slot.uncommitted.set(topic, c.next.toString());
    const tail = slot.tail.sort((a, b) => a.timestamp - b.timestamp || Number(a.offset - b.offset));
    slot.tail = [];
    const letters = slot.pendingLetters;
    slot.pendingLetters = [];
    // Where each state topic was read to and from where inputs count as unacknowledged: what a
    // fault round needs to tell a restore that read too little from one that decided twice.
    const read = [...slot.cursors].map(
      ([topic, c]) => `${topic.slice(this.prefix.length)} to ${c.next} (acknowledged to ${c.committed})`,
    );
    this.log(
      `${this.role}: partition ${slot.partition} restored (${read.join(", ") || "no state topics"}), deciding ${tail.length} unacknowledged input(s) again`,
    );
    // The tail is folded into the state already (above, while restoring): it is decided against
    // that state, not folded again. Folding an old input again would move the state back (a
    // TaskAssigned of attempt 1 over a state at attempt 3), and the worker would accept an attempt
    // that was reassigned while its process was down (seen in the fault suite).
    this.decide(
      slot,
      tail.map((t) => t.input),
      letters,
      true,
    );
    // What the role's extensions decide on as the partition goes live (failures declared while it
    // was elsewhere or restoring: extensions/agent-status.ts).
    for (const extension of this.extensions) extension.onLive?.(this.slotView(slot), this.view);
    this.startSideEffects(slot);
    await this.flush(slot);
  }

  private async close(slot: Slot): Promise<void> {
    clearTimeout(slot.offsetTimer);
    slot.closed = true;
    for (const run of slot.running.values()) run.abort();
    await slot.ready.catch(() => undefined);
    await slot.committing?.catch(() => undefined);
    await slot.writer?.disconnect().catch(() => undefined);
  }

  // ---- consuming -------------------------------------------------------------------------------

  private async onBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    const slot = this.slots.get(batch.partition);
    if (!slot || this.stopping) return;
    try {
      await slot.ready;
    } catch {
      return; // not resolved, so read again once open is tried again (see open)
    }
    if (isStale() || slot.closed) return;
    const topic = batch.topic;
    const first = BigInt((batch as unknown as { fetchedOffset: string }).fetchedOffset);
    const last = BigInt(batch.lastOffset());

    if (!slot.live) {
      const cursor = slot.cursors.get(topic);
      if (!cursor) {
        // A command topic waits until the state is restored; not resolving refetches the batch.
        await sleep(50);
        return;
      }
      if (first > cursor.next) {
        // Fetched before our seek took effect.
        this.consumer!.seek({ topic, partition: batch.partition, offset: cursor.next.toString() });
        return;
      }
      const letters: DeadLetter[] = [];
      for (const message of batch.messages) {
        const offset = BigInt(message.offset);
        if (offset < cursor.next) continue;
        slot.writer?.chain.observe(topic, message.headers, message.key);
        const input = await this.read(topic, batch.partition, message, letters);
        if (input === SKIP) continue;
        slot.state = evolve(slot.state, input);
        if (offset >= cursor.committed) slot.tail.push({ topic, offset, input, timestamp: Number(message.timestamp) });
      }
      // A message that cannot be read is dead-lettered once: when it is first decided on.
      slot.pendingLetters.push(...letters.filter((l) => BigInt(l.originalOffset) >= cursor.committed));
      cursor.next = last + 1n;
      resolveOffset(batch.lastOffset());
      await heartbeat();
      await this.goLiveIfRestored(slot);
      return;
    }

    const inputs: TierInput[] = [];
    const letters: DeadLetter[] = [];
    for (const message of batch.messages) {
      slot.writer?.chain.observe(topic, message.headers, message.key);
      const input = await this.read(topic, batch.partition, message, letters);
      if (input !== SKIP) inputs.push(input);
    }
    if (slot.closed || !slot.live) return;
    // Offset and decisions enter the pending transaction together, in one synchronous step, so a
    // transaction never carries an input's offset without its output.
    slot.uncommitted.set(topic, (last + 1n).toString());
    this.decide(slot, inputs, letters);
    this.startSideEffects(slot);
    resolveOffset(batch.lastOffset());
    const flushing = this.flush(slot);
    // Back-pressure: a partition whose writes fall behind stops fetching until they catch up.
    if (slot.pending.out.length > MAX_PENDING) await flushing;
    await heartbeat();
  }

  /** Decodes a message the tier reads; SKIP for types it does not read (known from the header). */
  private async read(
    topic: string,
    partition: number,
    message: KafkaMessage,
    letters: DeadLetter[],
  ): Promise<PolityEvent | typeof SKIP> {
    const typeHeader = message.headers?.[HEADER.type];
    if (typeHeader !== undefined) {
      const type = String(Array.isArray(typeHeader) ? typeHeader[0] : typeHeader);
      if (!this.options.decider.reads.has(type as MessageTypeName)) return SKIP;
    }
    try {
      const decoded = await this.options.codec.decode(message.value);
      if (!this.options.decider.reads.has(decoded.type as MessageTypeName)) return SKIP;
      return { type: decoded.type, value: decoded.value } as unknown as PolityEvent;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e; // registry unreachable: retry the batch later
      letters.push(deadLetterFor({ topic, partition, consumerGroup: this.groupId }, message, e));
      return SKIP;
    }
  }

  // ---- deciding and writing --------------------------------------------------------------------

  /**
   * Folds each input, decides, and folds the decisions at once, so the next input sees them. What
   * was decided waits in `slot.pending` for the slot's next transaction. Synchronous on purpose:
   * nothing can interleave with it.
   */
  private decide(slot: Slot, inputs: TierInput[], letters: DeadLetter[], folded = false): void {
    const ctx: DecisionContext = { now: new Date(), ...this.options.context };
    for (const input of inputs) {
      if (isEvent(input) && !folded) slot.state = evolve(slot.state, input);
      // The policies scoped to the input's tenant: a tenant's policy governs its own goals only.
      for (const d of this.options.decider.decide(input, slot.state, scopedContext(ctx, input, slot.state))) {
        const message = this.outgoing(slot, d, input);
        slot.state = evolve(slot.state, {
          type: d.type,
          value: { envelope: message.envelope!, ...d.payload },
        } as PolityEvent);
        slot.pending.out.push(message);
      }
    }
    slot.pending.letters.push(...letters);
    this.stats.inputs += inputs.filter((i) => i.type !== "ClockTicked").length;
  }

  /**
   * Group commit: writes everything pending, with the consumed offsets, in one transaction; what is
   * decided while it runs goes in the next one. Under load transactions grow, idle they stay short.
   * Offsets alone (inputs that decided nothing) wait for the next transaction or the offset timer
   * (`force`): deciding them again after a crash is harmless, as a repeat finds its effects in the
   * state. A failed transaction restores the slot from the log. Resolves false on failure.
   */
  private flush(slot: Slot, force = false): Promise<boolean> {
    if (slot.committing) {
      if (force) return slot.committing.then(() => this.flush(slot, true));
      return slot.committing;
    }
    const run = (async () => {
      while (!slot.closed) {
        const { out, letters } = slot.pending;
        if (out.length === 0 && letters.length === 0) {
          if (!force || slot.uncommitted.size === 0) {
            this.scheduleOffsetFlush(slot);
            return true;
          }
        }
        force = false;
        slot.pending = { out: [], letters: [] };
        const taken = new Map(slot.uncommitted);
        const offsets = [...taken].map(([topic, offset]) => ({
          topic,
          partitions: [{ partition: slot.partition, offset }],
        }));
        try {
          await this.commit(slot, out, letters, offsets);
        } catch (e) {
          this.log(
            `${this.role}: partition ${slot.partition}: transaction failed (${(e as Error).message}); restoring from the log`,
          );
          this.restart(slot);
          return false;
        }
        for (const [topic, offset] of taken) if (slot.uncommitted.get(topic) === offset) slot.uncommitted.delete(topic);
        this.stats.decisions += out.length;
        this.stats.deadLetters += letters.length;
        this.stats.transactions++;
        for (const m of out) this.written.set(m.type, (this.written.get(m.type) ?? 0) + 1);
        this.forgetSettledChains(slot);
      }
      return false;
    })();
    slot.committing = run;
    void run.finally(() => {
      if (slot.committing === run) slot.committing = null;
    });
    return run;
  }

  /**
   * One transaction, tried again while the broker answers with a retriable error: right after a
   * commit the coordinator may still be finishing it (CONCURRENT_TRANSACTIONS), and kafkajs does
   * not retry that on AddOffsetsToTxn. The messages are the same on every try: their envelopes were
   * built once, and an aborted try leaves nothing visible.
   */
  private async commit(
    slot: Slot,
    out: OutgoingMessage[],
    letters: DeadLetter[],
    offsets: { topic: string; partitions: { partition: number; offset: string }[] }[],
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await slot.writer!.transaction(async (tx) => {
          if (out.length > 0) await tx.send(out);
          await tx.sendDeadLetters(letters);
          if (offsets.length > 0) await tx.sendOffsets(this.groupId, offsets);
          return tx.written;
        });
        this.floor.noteCommitted(slot.partition, written);
        return;
      } catch (e) {
        const retriable =
          (e as { retriable?: boolean }).retriable === true ||
          /concurrent|CONCURRENT_TRANSACTIONS/i.test(String((e as Error).message));
        if (!retriable || attempt >= 8 || slot.closed) throw e;
        await sleep(20 * attempt);
      }
    }
  }

  /**
   * Lets the hash-chain heads of settled goals go (state.ts `settle`), at most every few seconds:
   * the chain learns a head for every stream the slot reads, and would otherwise keep them all.
   * Groups are record keys; keys that are no goal of the state (agent ids) are kept.
   */
  private forgetSettledChains(slot: Slot): void {
    const now = Date.now();
    if (!slot.writer || now - slot.chainsPrunedAt < CHAIN_PRUNE_MS) return;
    slot.chainsPrunedAt = now;
    slot.writer.chain.retainGroups((key) => slot.state.goals.get(key)?.settled !== true);
  }

  /** Commits offsets of inputs that decided nothing, at most a second after they were read. */
  private scheduleOffsetFlush(slot: Slot): void {
    if (slot.offsetTimer || slot.uncommitted.size === 0) return;
    slot.offsetTimer = setTimeout(() => {
      slot.offsetTimer = undefined;
      if (!slot.closed && slot.live && slot.uncommitted.size > 0) void this.flush(slot, true);
    }, OFFSET_FLUSH_MS);
  }

  /** Drops a slot whose state may hold decisions that were never written, and restores it. */
  private restart(slot: Slot): void {
    if (this.slots.get(slot.partition) !== slot) return;
    this.slots.delete(slot.partition);
    void this.close(slot).then(() => {
      if (!this.stopping && !this.slots.has(slot.partition)) this.open(slot.partition);
    });
  }

  private outgoing(slot: Slot, d: Decision, cause: TierInput | null): OutgoingMessage {
    const goalId = (d.payload as { goalId?: string }).goalId;
    const causeEnvelope =
      cause === null || !isEvent(cause) ? null : (cause.value as { envelope?: PolityEventEnvelope }).envelope;
    const context: MessageContext = {
      // Neither goal nor cause (the autoscaler's commands, timers): the platform's own (tenancy.ts).
      tenantId: (goalId && slot.state.goals.get(goalId)?.tenantId) || causeEnvelope?.tenantId || SYSTEM_TENANT,
      correlationId: goalId ?? causeEnvelope?.correlationId ?? d.aggregate.id,
      // An executor's outcome is caused by the attempt's TaskStarted.
      causationId:
        causeEnvelope?.eventId ?? (cause?.type === "ExecutionFinished" ? startedBy(slot.state, cause) : null),
      actor: d.actor,
      aggregate: d.aggregate,
    };
    return { type: d.type, payload: d.payload, context, envelope: buildEnvelope(d.type, context) } as OutgoingMessage;
  }

  // ---- side effects (extensions' `sideEffects`: executions, planning) -------------------------

  /**
   * Starts every side effect the state asks for that is not running yet (also after a restart), and
   * aborts those it no longer asks for: an attempt cancelled (emergency stop, failed goal), retried
   * or reassigned elsewhere, a plan no longer awaited. An aborted effect is told through its signal
   * (a shell command is killed, a model call cancelled), and whatever it returns is dropped, so no
   * TaskCompleted follows a TaskCancelled from this host.
   */
  private startSideEffects(slot: Slot): void {
    const providers = this.extensions.filter((e) => e.sideEffects);
    if (slot.closed || providers.length === 0) return;
    const effects = providers.flatMap((e) => e.sideEffects!(slot.state));
    if (slot.running.size > 0) {
      const wanted = new Set(effects.map((e) => e.key));
      for (const [key, abort] of slot.running) {
        if (wanted.has(key)) continue;
        slot.running.delete(key);
        abort.abort();
        this.log(`${this.role}: ${key} is no longer asked for here (cancelled or moved); it is aborted`);
      }
    }
    for (const effect of effects) {
      if (slot.running.has(effect.key)) continue;
      const abort = new AbortController();
      slot.running.set(effect.key, abort);
      const report = (outcome: SideEffectOutcome) => {
        if (abort.signal.aborted || slot.closed) return;
        slot.finished.push(outcome);
        this.scheduleFlush(slot);
      };
      void effect.run(abort.signal, report).then((outcome) => {
        if (slot.running.get(effect.key) === abort) slot.running.delete(effect.key);
        if (outcome === null || abort.signal.aborted || slot.closed) return;
        slot.finished.push(outcome);
        this.scheduleFlush(slot);
      });
    }
  }

  /** Reports finished side effects: everything that finished meanwhile goes in one decision step. */
  private scheduleFlush(slot: Slot): void {
    if (slot.flushScheduled) return;
    slot.flushScheduled = true;
    setImmediate(() => {
      slot.flushScheduled = false;
      if (slot.closed || slot.finished.length === 0) return;
      const finished = slot.finished;
      slot.finished = [];
      this.decide(slot, finished, []);
      this.startSideEffects(slot);
      void this.flush(slot);
    });
  }
}

type PolityEventEnvelope = { eventId: string; tenantId: string; correlationId: string };

/** eventId of the TaskStarted of the attempt an executor finished, when the state holds it. */
function startedBy(state: HierarchyState, e: ExecutionFinished): string | null {
  const started = state.tasks.get(taskKey(e.goalId, e.taskId))?.started;
  return started?.attempt === e.attempt ? started.eventId : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
