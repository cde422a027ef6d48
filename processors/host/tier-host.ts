/**
 * The host of one tier: a Kafka consumer group that runs the tier's decider exactly once per input.
 *
 * Per partition number p (a "slot"; every input topic is keyed by goal id and co-partitioned):
 *
 * 1. Restore. The slot's transactional producer (id `<tier>-p<p>`) is opened first, which fences a
 *    zombie owner of p and aborts its open transaction. The state topics of p are then read from
 *    offset 0 to their end and folded with `evolve`: the log is the only source of truth. Inputs at
 *    or after the group's committed offset were not acknowledged; they are kept aside.
 * 2. Decide again on those unacknowledged inputs, now that the state includes everything the log
 *    holds (the tier's own earlier output among it), so nothing already decided is decided twice.
 * 3. Live. For each batch: fold each input, ask the decider, fold its decisions at once (so the
 *    next input sees them), and write the decisions and the consumed offsets in one transaction.
 *
 * A crash anywhere loses nothing (offsets move only with the output) and duplicates nothing (an
 * aborted transaction is invisible to read_committed readers, and a repeat input finds its
 * effects already in the state). A failed transaction throws the slot's state away and restores.
 */
import { topicOffsets } from "../../lib/kafka.js";
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage } from "kafkajs";
import { buildEnvelope, HEADER, type MessageContext } from "../../producers/envelope.js";
import { EventWriter, type OutgoingMessage } from "../../producers/writer.js";
import { physicalTopic, topicFor } from "../../schemas/catalog.js";
import { DecodeError, type Codec } from "../../schemas/codec.js";
import type { DeadLetter, MessageTypeName } from "../../schemas/generated/types.js";
import { deadLetterFor, type PolityEvent } from "../../schemas/reader.js";
import type { AgentDirectory, AgentInfo } from "../domain/directory.js";
import { dependencyResults } from "../domain/context.js";
import { MONITOR_ID } from "../domain/health.js";
import {
  decision,
  type Decision,
  type DecisionContext,
  isEvent,
  type ExecutionFinished,
  type SideEffectOutcome,
  type TierDecider,
  type TierInput,
} from "../domain/decider.js";
import type { Planner } from "../domain/planner.js";
import { NO_POLICIES, scopedContext, type PolicyBook } from "../domain/policies.js";
import { SYSTEM_TENANT } from "../domain/tenancy.js";
import { evolve, initialState, loadOf, taskKey, type HierarchyState } from "../domain/state.js";
import { runningOn } from "../domain/worker.js";
import type { Execution, Executor, Progress } from "../executors.js";
import { coPartitionedAssigner } from "./assignor.js";

export interface TierTopics {
  /** Catalog names of the topics the tier consumes. */
  inputs: string[];
  /** Those of the inputs whose events make up the state (commands do not). */
  state: string[];
}

export interface TierHostOptions {
  kafka: Kafka;
  codec: Codec;
  decider: TierDecider;
  topics: TierTopics;
  directory: AgentDirectory;
  planner: Planner;
  /** The agents this host acts for. */
  hosts: (agentId: string) => boolean;
  /** Worker tier only: the executor that runs a hosted agent's tasks. */
  executorFor?: (agentId: string) => Executor | null;
  /**
   * Other side effects the state calls for (the president's planning): each is run once while the
   * state keeps asking for it, aborted when it stops asking, and its outcome is decided on as an input.
   */
  sideEffects?: (state: HierarchyState) => SideEffect[];
  /**
   * Worker tier: write an AgentHeartbeat for every hosted agent, each at its registered interval,
   * all due beats in one transaction (through the first live partition's writer).
   */
  heartbeats?: boolean;
  /**
   * Health tier: every `intervalMs`, write the monitor's own heartbeat into each partition this
   * host owns; reading it back is the health decider's clock tick.
   */
  ticks?: { intervalMs: number };
  /**
   * The deciders' clock (time limits, deadlines: domain/time-limits.ts): every `intervalMs`, each
   * live partition decides on a ClockTicked with the time now, unless `due` says its state has
   * nothing to watch. The tick is not written; what it decides is.
   */
  clock?: { intervalMs: number; due?: (state: HierarchyState) => boolean };
  /**
   * Awaited before a partition goes live, once its state is restored: the scaler, which decides
   * from the process's directory, waits there for the directory to catch up with the log.
   */
  beforeLive?: () => Promise<void>;
  /**
   * A periodic sample (the autoscaler): every `intervalMs`, the host that owns partition 0 of its
   * inputs writes what `decide` returns for the time now, through that partition's transactions.
   * It is written as a command and decided on like any input, so the decision is in the log.
   */
  sample?: { intervalMs: number; decide: (now: Date) => Decision[] };
  /**
   * Agent lifecycle facts seen by the process's directory (AgentFailed, AgentRecovered): the facts
   * of agents failed now, and a listener for new ones. A tier whose decider reads these types
   * decides on them in every live partition, and on the current failures whenever a partition goes live.
   */
  agentEvents?: AgentEventSource;
  /** Every policy version, kept by the process's PolicyFeed; an empty book when absent. */
  policies?: PolicyBook;
  /** Retry and escalation limits per topology (the topology file's `retries`); the defaults when absent. */
  retryLimits?: DecisionContext["retryLimits"];
  /** Task time limits and goal deadlines per topology (the topology file's `timeoutMs`, `deadlines`); none when absent. */
  timeLimits?: DecisionContext["timeLimits"];
  /** How each topology plans goals (the topology file's `planner`); the template planner when absent. */
  planning?: DecisionContext["planning"];
  topicPrefix?: string;
  /** Partitions processed at once (kafkajs partitionsConsumedConcurrently); default 6, every partition. */
  concurrency?: number;
  log?: (line: string) => void;
}

/** A side effect the state calls for: run outside the decider, its outcome handed back to it. */
export interface SideEffect {
  /** Identifies the effect: one runs per key at a time, and it is aborted once the state no longer asks for its key. */
  key: string;
  /**
   * Runs it; null when nothing is to be reported (an agent silenced by a test). `report` hands over
   * intermediate outcomes (progress) while it runs.
   */
  run(signal: AbortSignal, report: (outcome: SideEffectOutcome) => void): Promise<SideEffectOutcome | null>;
}

export interface AgentEventSource {
  /** The AgentFailed facts of agents failed now. */
  failed(): PolityEvent[];
  /** Calls `listener` with each AgentFailed and AgentRecovered read from now on; returns an unsubscribe. */
  onStatusChange(listener: (event: PolityEvent) => void): () => void;
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
}

/** How long offsets of inputs that decided nothing may wait for a transaction to carry them. */
const OFFSET_FLUSH_MS = 1_000;
const CHAIN_PRUNE_MS = 5_000;
/** Decided messages a partition may hold unwritten before it stops fetching. */
const MAX_PENDING = 5_000;

const SKIP = Symbol("skip");

export class TierHost {
  private consumer?: Consumer;
  private admin?: Admin;
  private readonly slots = new Map<number, Slot>();
  private readonly groupId: string;
  private readonly prefix: string;
  private readonly stateTopics: Set<string>;
  private readonly log: (line: string) => void;
  private stopping = false;
  /** Counters for progress lines, tests and benchmarks. */
  readonly stats = { inputs: 0, decisions: 0, transactions: 0, deadLetters: 0, restores: 0 };
  /** Messages this host wrote, by type. */
  readonly written = new Map<string, number>();
  /** Hosted agents made to hang (tests): no heartbeats, no executions started or reported. */
  private readonly silenced = new Set<string>();
  private beatTimer?: NodeJS.Timeout;
  private sampleTimer?: NodeJS.Timeout;
  private clockTimer?: NodeJS.Timeout;
  /** Per hosted agent: heartbeats sent since this host started, and when the last went out. */
  private readonly beats = new Map<string, { sequence: number; lastAt: number }>();
  private unsubscribe?: () => void;

  constructor(private readonly options: TierHostOptions) {
    this.prefix = options.topicPrefix ?? "";
    this.groupId = `${this.prefix}polity-${options.decider.role}`;
    this.stateTopics = new Set(options.topics.state.map((t) => physicalTopic(t, this.prefix)));
    this.log = options.log ?? (() => undefined);
  }

  get role(): string {
    return this.options.decider.role;
  }

  async start(): Promise<void> {
    const { kafka } = this.options;
    // One admin client for the host: every partition it opens reads offsets through it.
    this.admin = kafka.admin();
    await this.admin.connect();
    const consumer = kafka.consumer({
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
    // Metrics (host/metrics.ts): a crash kafkajs does not restart from leaves this tier down.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.crashed = true;
    });
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
    this.unsubscribe = this.options.agentEvents?.onStatusChange((e) => this.onAgentEvent(e));
    this.startBeating();
    this.startSampling();
    this.startClock();
  }

  /**
   * Makes a hosted agent hang, as a test's stand-in for a stuck process: it stops heartbeating, and
   * its attempts are neither started nor reported until `unsilence`.
   */
  silence(agentId: string): void {
    this.silenced.add(agentId);
  }

  unsilence(agentId: string): void {
    this.silenced.delete(agentId);
    for (const slot of this.slots.values()) if (slot.live && !slot.closed) this.startSideEffects(slot);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.beatTimer);
    clearInterval(this.sampleTimer);
    clearInterval(this.clockTimer);
    this.unsubscribe?.();
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

  /** Whether this host acts for an agent now (a silenced one does not). */
  actsFor(agentId: string): boolean {
    return !this.silenced.has(agentId) && this.options.hosts(agentId);
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
      for (const { partition, high, low } of await this.admin.fetchTopicOffsets(topic)) {
        const c = done.find((p) => p.partition === partition)?.offset;
        const from = c === undefined || c === "-1" ? BigInt(low) : BigInt(c);
        const lag = BigInt(high) - from;
        out.push({ group: this.groupId, topic: inputs[i]!, partition, lag: lag > 0n ? Number(lag) : 0 });
      }
    }
    return out;
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
      transactionalId: `${this.groupId}-p${slot.partition}`,
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
    for (const topic of topics) {
      const ends = await topicOffsets(admin, topic);
      const end = ends.find((o) => o.partition === slot.partition)!;
      const low = BigInt(end.low);
      const c = committed.find((t) => t.topic === topic)?.partitions.find((x) => x.partition === slot.partition);
      const committedAt = c && c.offset !== "-1" ? BigInt(c.offset) : low;
      slot.cursors.set(topic, { committed: committedAt, end: BigInt(end.high), next: low });
      this.consumer!.seek({ topic, partition: slot.partition, offset: low.toString() });
    }
    await this.options.beforeLive?.();
    await this.goLiveIfRestored(slot);
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
    this.log(
      `${this.role}: partition ${slot.partition} restored, deciding ${tail.length} unacknowledged input(s) again`,
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
    // Failures declared while this partition was elsewhere or restoring: decided on here (a
    // decision already in the log finds nothing left to do).
    const failures = (this.options.agentEvents?.failed() ?? []).filter((e) => this.options.decider.reads.has(e.type));
    if (failures.length > 0) this.decide(slot, failures, []);
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

  private context(): DecisionContext {
    return {
      now: new Date(),
      directory: this.options.directory,
      planner: this.options.planner,
      hosts: this.options.hosts,
      policies: this.options.policies ?? NO_POLICIES,
      ...(this.options.retryLimits ? { retryLimits: this.options.retryLimits } : {}),
      ...(this.options.timeLimits ? { timeLimits: this.options.timeLimits } : {}),
      ...(this.options.planning ? { planning: this.options.planning } : {}),
    };
  }

  /**
   * Folds each input, decides, and folds the decisions at once, so the next input sees them. What
   * was decided waits in `slot.pending` for the slot's next transaction. Synchronous on purpose:
   * nothing can interleave with it.
   */
  private decide(slot: Slot, inputs: TierInput[], letters: DeadLetter[], folded = false): void {
    const ctx = this.context();
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
        await slot.writer!.transaction(async (tx) => {
          if (out.length > 0) await tx.send(out);
          await tx.sendDeadLetters(letters);
          if (offsets.length > 0) await tx.sendOffsets(this.groupId, offsets);
        });
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

  // ---- side effects: executors (worker tier), planning (president) ----------------------------

  /**
   * Starts every side effect the state asks for that is not running yet (also after a restart), and
   * aborts those it no longer asks for: an attempt cancelled (emergency stop, failed goal), retried
   * or reassigned elsewhere, a plan no longer awaited. An aborted effect is told through its signal
   * (a shell command is killed, a model call cancelled), and whatever it returns is dropped, so no
   * TaskCompleted follows a TaskCancelled from this host.
   */
  private startSideEffects(slot: Slot): void {
    if (slot.closed || (!this.options.executorFor && !this.options.sideEffects)) return;
    const effects = [...this.executions(slot), ...(this.options.sideEffects?.(slot.state) ?? [])];
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

  /** The attempts the state says are running on this host's workers, as side effects. */
  private executions(slot: Slot): SideEffect[] {
    const executorFor = this.options.executorFor;
    if (!executorFor) return [];
    const out: SideEffect[] = [];
    for (const task of runningOn(slot.state, this.options.hosts)) {
      if (this.silenced.has(task.workerId!)) continue;
      const executor = executorFor(task.workerId!);
      if (!executor) continue;
      const execution: Execution = {
        goalId: task.goalId,
        taskId: task.spec.id,
        attempt: task.attempt,
        agentId: task.workerId!,
        spec: task.spec,
        dependencies: dependencyResults(slot.state, task),
      };
      out.push({
        key: `attempt ${taskKey(task.goalId, task.spec.id)}#${task.attempt}`,
        run: async (signal, report) => {
          const started = Date.now();
          const ids = {
            goalId: execution.goalId,
            taskId: execution.taskId,
            agentId: execution.agentId,
            attempt: execution.attempt,
          };
          const progress = (p: Progress) => report({ type: "ExecutionProgressed", ...ids, ...p });
          const outcome = await executor.run(execution, signal, progress).catch((e: Error) => ({
            ok: false as const,
            reason: `executor threw: ${e.message}`,
            kind: "EXECUTION_ERROR" as const,
            retryable: true,
            durationMs: Date.now() - started,
            exitCode: null,
            output: null,
          }));
          // A hung (silenced) agent never reports; its attempt starts again if it resumes.
          if (this.silenced.has(execution.agentId)) return null;
          return { type: "ExecutionFinished", ...ids, outcome } satisfies ExecutionFinished;
        },
      });
    }
    return out;
  }

  // ---- heartbeats, ticks and agent status (health) ---------------------------------------------

  private startBeating(): void {
    const { heartbeats, ticks } = this.options;
    if (!heartbeats && !ticks) return;
    const hosted = () => this.options.directory.all().filter((a) => this.options.hosts(a.agentId));
    const period = ticks
      ? ticks.intervalMs
      : Math.min(1_000, ...hosted().map((a) => Math.max(10, a.heartbeatIntervalMs)));
    this.beatTimer = setInterval(() => {
      if (this.stopping) return;
      if (ticks) this.tick();
      if (heartbeats) this.heartbeat(hosted(), period);
    }, period);
    this.beatTimer.unref?.();
  }

  private startSampling(): void {
    const sample = this.options.sample;
    if (!sample) return;
    this.sampleTimer = setInterval(() => {
      const slot = this.slots.get(0);
      if (this.stopping || !slot?.live || slot.closed) return;
      let decisions: Decision[];
      try {
        decisions = sample.decide(new Date());
      } catch (e) {
        this.log(`${this.role}: sample failed: ${(e as Error).message}`);
        return;
      }
      if (decisions.length === 0) return;
      slot.pending.out.push(...decisions.map((d) => this.outgoing(slot, d, null)));
      void this.flush(slot);
    }, sample.intervalMs);
    this.sampleTimer.unref?.();
  }

  /** The deciders' clock: a ClockTicked into every live partition with something to watch (options.clock). */
  private startClock(): void {
    const clock = this.options.clock;
    if (!clock) return;
    this.clockTimer = setInterval(() => {
      if (this.stopping) return;
      const now = new Date();
      for (const slot of this.liveSlots()) {
        if (clock.due && !clock.due(slot.state)) continue;
        const before = slot.pending.out.length;
        this.decide(slot, [{ type: "ClockTicked", now }], []);
        if (slot.pending.out.length === before) continue;
        this.startSideEffects(slot);
        void this.flush(slot);
      }
    }, clock.intervalMs);
    this.clockTimer.unref?.();
  }

  private liveSlots(): Slot[] {
    return [...this.slots.values()].filter((s) => s.live && !s.closed).sort((a, b) => a.partition - b.partition);
  }

  /** One heartbeat for each hosted agent that is due, all through one partition's next transaction. */
  private heartbeat(agents: AgentInfo[], period: number): void {
    const slots = this.liveSlots();
    const carrier = slots[0];
    if (!carrier) return;
    const now = Date.now();
    const out: OutgoingMessage[] = [];
    for (const agent of agents) {
      if (this.silenced.has(agent.agentId) || agent.status === "TERMINATED") continue;
      const beat = this.beats.get(agent.agentId) ?? { sequence: 0, lastAt: 0 };
      if (now - beat.lastAt < agent.heartbeatIntervalMs - period / 2) continue;
      beat.sequence += 1;
      beat.lastAt = now;
      this.beats.set(agent.agentId, beat);
      // The agent's load, as this process sees it: the tasks its partitions have running on it.
      const inFlight: string[] = [];
      let held = 0;
      for (const slot of slots) {
        held += loadOf(slot.state, agent.agentId);
        for (const key of slot.state.activeByAgent.get(agent.agentId) ?? []) {
          const t = slot.state.tasks.get(key);
          if (t && t.workerId === agent.agentId) inFlight.push(key);
        }
      }
      const load = agent.capacity > 0 ? held / agent.capacity : 0;
      const d = decision(
        "AgentHeartbeat",
        {
          agentId: agent.agentId,
          tier: agent.tier,
          status: held === 0 ? "IDLE" : load >= 1 ? "OVERLOADED" : "BUSY",
          load,
          capacity: agent.capacity,
          inFlightTasks: inFlight.sort(),
          sequence: beat.sequence,
          at: new Date(now),
        },
        { id: agent.agentId, tier: agent.tier },
        { type: "AGENT", id: agent.agentId },
      );
      out.push(this.outgoing(carrier, d, null));
    }
    if (out.length === 0) return;
    carrier.pending.out.push(...out);
    void this.flush(carrier);
  }

  /** The monitor's heartbeat into each partition this host owns: the health decider's clock. */
  private tick(): void {
    const partitions = topicFor("AgentHeartbeat").partitions;
    for (const slot of this.liveSlots()) {
      const agentId = monitorIdFor(slot.partition, partitions);
      const beat = this.beats.get(agentId) ?? { sequence: 0, lastAt: 0 };
      beat.sequence += 1;
      beat.lastAt = Date.now();
      this.beats.set(agentId, beat);
      const d = decision(
        "AgentHeartbeat",
        {
          agentId,
          tier: "SYSTEM",
          status: "BUSY",
          load: 0,
          capacity: 0,
          inFlightTasks: [],
          sequence: beat.sequence,
          at: new Date(beat.lastAt),
        },
        { id: agentId, tier: "SYSTEM" },
        { type: "AGENT", id: agentId },
      );
      slot.pending.out.push(this.outgoing(slot, d, null));
      void this.flush(slot);
    }
  }

  /** An agent failed or recovered (as the directory read it): every live partition decides on it. */
  private onAgentEvent(event: PolityEvent): void {
    if (this.stopping || !this.options.decider.reads.has(event.type)) return;
    for (const slot of this.liveSlots()) {
      this.decide(slot, [event], []);
      void this.flush(slot);
    }
  }

  /** Reports finished attempts: everything that finished meanwhile goes in one decision step. */
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

const monitorIds = new Map<string, string>();

/**
 * The monitor's agent id for a partition: `health-monitor` where that key lands, else the first
 * `health-monitor-<n>` the producer's default partitioner (murmur2, as Java's) puts on it.
 */
export function monitorIdFor(partition: number, partitions: number): string {
  const cacheKey = `${partition}/${partitions}`;
  const known = monitorIds.get(cacheKey);
  if (known) return known;
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  for (let n = 0; ; n++) {
    const key = n === 0 ? MONITOR_ID : `${MONITOR_ID}-${n}`;
    if (
      partitioner({ topic: "polity.agents.events", partitionMetadata, message: { key, value: null } }) === partition
    ) {
      monitorIds.set(cacheKey, key);
      return key;
    }
  }
}

/** eventId of the TaskStarted of the attempt an executor finished, when the state holds it. */
function startedBy(state: HierarchyState, e: ExecutionFinished): string | null {
  const started = state.tasks.get(taskKey(e.goalId, e.taskId))?.started;
  return started?.attempt === e.attempt ? started.eventId : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
