/**
 * `npm run bench:projections [-- --goals N --reps R]` (or BENCH_GOALS, BENCH_REPS; defaults 100, 3):
 * events/s projected from a recorded log into the PostgreSQL analytics store and the MongoDB state
 * store, each next to a bare batched write of the same end state, measured in the same run.
 * BENCH_TIMEOUT_MS (1800000) bounds the recording and each projection; BENCH_STALL_MS (60000) gives
 * up on a projection whose store finishes no write for that long; BENCH_MONGO_APPLY_EVENTS (10): see
 * options().
 *
 * Log: the hierarchy (the tests' topology) runs N goals of the tests' ten-task DAG on topics of
 * their own and is stopped once every goal has ended; the records of the projected topics are counted.
 * Projection: a ProjectionHost with a fresh consumer group reads them from offset 0 into a fresh target
 * (schema bench_proj_*, collections bench_*_) until its checkpoints reach the log end; the clock runs
 * from the group join to the apply that brought the last partition to the end.
 * Baseline: the projected target's final rows (documents) written into an empty copy of it (same
 * tables, constraints and indexes; same collections and indexes) on one connection, with multi-row
 * inserts (unordered bulk insertOne), only the writes timed. Its events/s is the log's events over that
 * time, so that both figures describe reaching the same end state. Every measurement is repeated R
 * times, each into fresh targets. Nothing of Polity is patched; the store is wrapped to see its checkpoints.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Kafka } from "kafkajs";
import { PolityKafka } from "../lib/kafka.js";
import type { Admin, Consumer, ConsumerConfig } from "kafkajs";
import { MongoClient, type AnyBulkWriteOperation, type Db, type Document } from "mongodb";
import pg from "pg";
import { repoRoot, urlsToEnv, type InfraUrls } from "../lib/config.js";
import { defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import { startHierarchy } from "../processors/hierarchy.js";
import { ensureTopics } from "../producers/admin.js";
import { submitGoal } from "../producers/commands.js";
import { HEADER } from "../producers/envelope.js";
import { EventWriter } from "../producers/writer.js";
import {
  checkpointKey,
  ProjectionHost,
  type Checkpoints,
  type LoggedEvent,
  type ProjectionStore,
} from "../projections/host.js";
import { STATE_COLLECTIONS, StateStore, stateCollections } from "../projections/mongo/state-store.js";
import { AnalyticsStore } from "../projections/pg/analytics-store.js";
import { migrate, schemaIdent } from "../projections/pg/migrate.js";
import { PROJECTED_TOPICS } from "../projections/run.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import { LogWatcher } from "../test/support/watch.js";

/** Every topic either read model folds (the state model's are a superset of the analytics model's). */
const LOG_TOPICS: readonly string[] = [...new Set([...PROJECTED_TOPICS.analytics, ...PROJECTED_TOPICS.state])];
const FINAL = new Set(["GoalCompleted", "GoalFailed", "GoalRejected", "GoalStopped"]);
/** Rows per INSERT statement and documents per bulkWrite of the baselines. */
const STATEMENT_ROWS = 1_000;
const TASKS_PER_GOAL = 10;

type Say = (line: string) => void;
type Support = typeof import("../test/support/hierarchy.js");

export const PROJECTIONS_BENCH_COMMAND = defineCommand({
  name: "bench projections",
  summary: "read model events/s next to bare batched inserts of the same rows",
  options: {
    goals: { type: "string", value: "N", help: "goals recorded, then projected (default 100, or BENCH_GOALS)" },
    reps: { type: "string", value: "R", help: "repetitions (default 3, or BENCH_REPS)" },
    "timeout-ms": {
      type: "string",
      value: "ms",
      help: "the most one projection may take (default 1800000, or BENCH_TIMEOUT_MS)",
    },
    "stall-ms": {
      type: "string",
      value: "ms",
      help: "a projection without a store write for this long has stalled (default 60000, or BENCH_STALL_MS)",
    },
    "mongo-apply-events": {
      type: "string",
      value: "N",
      help: "the most events the state store is given per apply; 0: the host's batches (default 0, or BENCH_MONGO_APPLY_EVENTS)",
    },
  },
});

function options(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseCommandArgs(PROJECTIONS_BENCH_COMMAND, args);
  const whole = (flag: keyof typeof values, name: string, fallback: number, least = 1): number =>
    wholeNumber(flag, values[flag] ?? (env[name] || String(fallback)), least);
  return {
    goals: whole("goals", "BENCH_GOALS", 100),
    reps: whole("reps", "BENCH_REPS", 3),
    timeoutMs: whole("timeout-ms", "BENCH_TIMEOUT_MS", 1_800_000),
    /** A projection that finishes no store write for this long has stalled (FerretDB, see FERRETDB_STALL). */
    stallMs: whole("stall-ms", "BENCH_STALL_MS", 60_000),
    /**
     * The most events the state store is given per apply; 0 (the default) gives it the host's
     * batches unchanged. A replay's batches hold hundreds of events; a state store that sent them as
     * one bulk of updates deadlocked FerretDB 1.24 (FERRETDB_STALL), which splitting them here avoids.
     */
    mongoApplyEvents: whole("mongo-apply-events", "BENCH_MONGO_APPLY_EVENTS", 0, 0),
  };
}
type Options = ReturnType<typeof options>;

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n = (x: number) => Math.round(x).toLocaleString("en");

interface Spread {
  median: number;
  min: number;
  max: number;
}
const spread = (xs: number[]): Spread => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: r1(median), min: r1(sorted[0]!), max: r1(sorted.at(-1)!) };
};

/** Whether the machine was the limit: a low rate on a busy machine says little. */
function cpuWindow() {
  const idle = () => sum(os.cpus().map((c) => c.times.idle));
  const all = () => sum(os.cpus().flatMap((c) => Object.values(c.times)));
  const [idle0, all0, p0, t0] = [idle(), all(), process.cpuUsage(), performance.now()];
  return () => {
    const p = process.cpuUsage(p0);
    return {
      machineBusy: r3(1 - (idle() - idle0) / Math.max(1, all() - all0)),
      processCpuCores: r3((p.user + p.system) / 1000 / (performance.now() - t0)),
    };
  };
}

async function waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Notes when each consumer group first joins: a projection's clock starts there, not at connect. */
class BenchKafka extends PolityKafka {
  readonly joinedAt = new Map<string, number>();
  readonly joins = new Map<string, number>();
  constructor(brokers: string[]) {
    super(brokers, "polity-bench-projections");
  }
  override consumer(config: ConsumerConfig): Consumer {
    const consumer = super.consumer(config);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.joins.set(config.groupId, (this.joins.get(config.groupId) ?? 0) + 1);
      if (!this.joinedAt.has(config.groupId)) this.joinedAt.set(config.groupId, performance.now());
    });
    return consumer;
  }
}

async function withAdmin<T>(kafka: Kafka, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

/** The high watermark (transaction markers included) of every partition, keyed as the stores key checkpoints. */
function logEnds(kafka: Kafka, prefix: string, topics: readonly string[]): Promise<Checkpoints> {
  return withAdmin(kafka, async (admin) => {
    const ends: Checkpoints = new Map();
    for (const topic of topics) {
      for (const { partition, high } of await admin.fetchTopicOffsets(physicalTopic(topic, prefix))) {
        ends.set(checkpointKey(topic, partition), BigInt(high));
      }
    }
    return ends;
  });
}

const only = (ends: Checkpoints, topics: readonly string[]): Checkpoints =>
  new Map([...ends].filter(([k]) => topics.includes(k.slice(0, k.lastIndexOf(":")))));

/**
 * test/support/hierarchy.ts (the tests' topology, DAG and clean-up) reads the URLs from the
 * environment when it loads; give it the ones resolved for this run.
 */
async function testSupport(urls: InfraUrls): Promise<Support> {
  for (const [name, value] of Object.entries(urlsToEnv(urls))) process.env[name] = value;
  return import("../test/support/hierarchy.js");
}

/**
 * Counts the committed records of `topics` up to `ends`, as a projection reads them. A partition is
 * read to its end when a batch (of records or of transaction markers only) reaches its high watermark.
 */
async function countRecords(kafka: Kafka, prefix: string, ends: Checkpoints, timeoutMs: number) {
  const topics = [...new Set([...ends.keys()].map((k) => k.slice(0, k.lastIndexOf(":"))))];
  const next: Checkpoints = new Map();
  const perTopic: Record<string, number> = Object.fromEntries(topics.map((t) => [t, 0]));
  const byType: Record<string, number> = {};
  const advance = (physical: string, partition: number, lastOffset: string) => {
    const key = checkpointKey(physical.slice(prefix.length), partition);
    const n = BigInt(lastOffset) + 1n;
    if (n > (next.get(key) ?? 0n)) next.set(key, n);
  };
  const consumer = kafka.consumer({ groupId: `${prefix}bench-count`, readUncommitted: false, maxWaitTimeInMs: 100 });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.batchSize === 0) advance(payload.topic, payload.partition, payload.lastOffset);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: topics.map((t) => physicalTopic(t, prefix)), fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const topic = batch.topic.slice(prefix.length);
        const from = next.get(checkpointKey(topic, batch.partition)) ?? 0n;
        for (const m of batch.messages) {
          if (BigInt(m.offset) < from) continue;
          perTopic[topic]!++;
          const type = String(m.headers?.[HEADER.type] ?? "?");
          byType[type] = (byType[type] ?? 0) + 1;
        }
        advance(batch.topic, batch.partition, batch.lastOffset());
      },
    });
    const reached = () => [...ends].every(([k, end]) => (next.get(k) ?? 0n) >= end);
    await waitFor(reached, timeoutMs, "the record count to reach the end of the log");
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return { perTopic, byType };
}

/** Runs the hierarchy on the bench's topics until every goal has ended, stops it, counts the log. */
async function recordLog(kafka: BenchKafka, codec: Codec, support: Support, prefix: string, opts: Options, say: Say) {
  const log = (line: string) => {
    if (/fail|error|could not/i.test(line)) say(`hierarchy: ${line}`);
  };
  await ensureTopics(kafka, prefix);
  // No heartbeats: the recorded log holds only the goals' events, as before the health monitor.
  const hierarchy = await startHierarchy({
    kafka,
    codec,
    topology: support.testTopology(),
    topicPrefix: prefix,
    log,
    heartbeats: false,
  });
  let [writer, watch, progress]: [EventWriter?, LogWatcher?, NodeJS.Timeout?] = [];
  const outcomes = new Map<string, string>();
  let scanned = 0;
  const scan = () => {
    for (; watch && scanned < watch.seen.length; scanned++) {
      const { type, value } = watch.seen[scanned]!.event;
      if (FINAL.has(type)) outcomes.set((value as { goalId: string }).goalId, type);
    }
    return outcomes.size;
  };
  const t0 = performance.now();
  try {
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events"]);
    say(`log: submitting ${opts.goals} goals x ${TASKS_PER_GOAL} tasks (the tests' DAG and topology)`);
    progress = setInterval(() => {
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      say(`log ${s}s: ${scan()}/${opts.goals} goals ended, ${watch?.seen.length ?? 0} goal events`);
    }, 2_000);
    for (let i = 0; i < opts.goals; i++) {
      const goalId = `bench-proj-goal-${i}`;
      const request = { goalId, kind: "GOAL", title: `bench goal ${i}`, topology: "aamas" } as const;
      await submitGoal(writer, { tenantId: "bench", userId: "bench" }, { ...request, tasks: support.TEN_TASK_DAG });
    }
    await waitFor(() => scan() >= opts.goals, opts.timeoutMs, `${opts.goals} goals to end`);
    clearInterval(progress);
    // Let the transactions still open (snapshots, the last reports) commit: wait for a quiet log.
    let [before, quietSince] = ["", performance.now()];
    const settleUntil = performance.now() + 15_000;
    while (performance.now() - quietSince < 1_500 && performance.now() < settleUntil) {
      const now = [...(await logEnds(kafka, prefix, LOG_TOPICS)).values()].join(",");
      if (now !== before) [before, quietSince] = [now, performance.now()];
      await sleep(250);
    }
  } finally {
    clearInterval(progress);
    await watch?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy.stop();
  }
  const recordMs = performance.now() - t0;
  const byOutcome: Record<string, number> = {};
  for (const type of outcomes.values()) byOutcome[type] = (byOutcome[type] ?? 0) + 1;
  say(`log: ${opts.goals} goals ended in ${(recordMs / 1000).toFixed(1)} s (${JSON.stringify(byOutcome)})`);
  const ends = await logEnds(kafka, prefix, LOG_TOPICS);
  const { perTopic, byType } = await countRecords(kafka, prefix, ends, 60_000);
  const records = (topics: readonly string[]) => sum(topics.map((t) => perTopic[t] ?? 0));
  const events = { analytics: records(PROJECTED_TOPICS.analytics), state: records(PROJECTED_TOPICS.state) };
  say(`log: ${JSON.stringify(perTopic)} records; analytics reads ${events.analytics}, state ${events.state}`);
  return { ends, perTopic, byType, events, outcomes: byOutcome, recordMs: r1(recordMs) };
}
type RecordedLog = Awaited<ReturnType<typeof recordLog>>;

/**
 * A store as the host sees it, which notes every checkpoint written and the instant the last
 * partition reached the end of the log. Reads and writes go to the store unchanged, except that a
 * batch of more than `maxEvents` events is applied in consecutive parts of at most that many, each
 * with the checkpoint just past its last event (as if the host had fetched smaller batches).
 */
class TimedStore implements ProjectionStore {
  readonly reached: Checkpoints = new Map();
  applied = 0;
  applies = 0;
  lastProgressAt = performance.now();
  doneAt?: number;
  readonly done: Promise<void>;
  private resolve!: () => void;
  private stopped = false;

  constructor(
    private readonly inner: ProjectionStore,
    private readonly ends: Checkpoints,
    private readonly maxEvents = Infinity,
  ) {
    this.done = new Promise((r) => (this.resolve = r));
    this.check();
  }

  get name(): string {
    return this.inner.name;
  }

  checkpoints(): Promise<Checkpoints> {
    return this.inner.checkpoints();
  }

  /** Refuses every later batch, so that a store that stopped answering gets nothing more to do. */
  stop(): void {
    this.stopped = true;
  }

  async apply(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    let from = 0;
    for (; events.length - from > this.maxEvents; from += this.maxEvents) {
      const part = events.slice(from, from + this.maxEvents);
      await this.applyPart(topic, partition, part, part.at(-1)!.offset + 1n);
    }
    await this.applyPart(topic, partition, events.slice(from), next);
  }

  private async applyPart(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    if (this.stopped) throw new Error("the bench has stopped this projection");
    await this.inner.apply(topic, partition, events, next);
    const key = checkpointKey(topic, partition);
    if (next > (this.reached.get(key) ?? 0n)) this.reached.set(key, next);
    this.applied += events.length;
    this.applies++;
    this.lastProgressAt = performance.now();
    this.check();
  }

  private check(): void {
    if (this.doneAt !== undefined) return;
    if ([...this.ends].every(([k, end]) => (this.reached.get(k) ?? 0n) >= end)) {
      this.doneAt = performance.now();
      this.resolve();
    }
  }
}

/** FerretDB 1.24's way of failing under a large batch; see mongoApplyEvents in options(). */
const FERRETDB_STALL =
  "a known cause: FerretDB 1.24 deadlocks on an update command with more matching statements than its backend pool has " +
  "connections (internal/handler/msg_update.go keeps every statement's iterator open until the command ends; 100 on " +
  "SQLite, 50 on PostgreSQL) and then answers no query on that database until restarted: " +
  "npm run stack -- down mongo && npm run stack -- up mongo";

/**
 * Projects the recorded log from offset 0 into `store` with a fresh group; timed from the group join
 * to the apply that brought the last partition to the log end. Gives up when no apply has finished
 * for `stallMs`, calling `interrupt` (to release a store call that will never return) before stopping.
 */
async function project(
  kafka: BenchKafka,
  codec: Codec,
  prefix: string,
  target: { store: ProjectionStore; maxEvents?: number; interrupt?: () => Promise<void> },
  topics: readonly string[],
  log: RecordedLog,
  label: string,
  opts: Options,
  say: Say,
) {
  const ends = only(log.ends, topics);
  const events = sum(topics.map((t) => log.perTopic[t] ?? 0));
  const timed = new TimedStore(target.store, ends, target.maxEvents);
  const groupId = `${prefix}${label}`;
  const host = new ProjectionHost({
    kafka,
    codec,
    store: timed,
    topics: [...topics],
    topicPrefix: prefix,
    groupId,
    log: (line) => say(`${label}: ${line}`),
  });
  const t0 = performance.now();
  const progress = setInterval(() => {
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    say(`${label} ${s}s: ${timed.applied}/${events} events applied`);
  }, 2_000);
  const cpu = cpuWindow();
  try {
    await host.start();
    timed.lastProgressAt = performance.now();
    while (timed.doneAt === undefined) {
      const now = performance.now();
      if (now - timed.lastProgressAt > opts.stallMs) {
        throw new Error(`${label}: no store write finished for ${opts.stallMs} ms (${timed.applied}/${events} events)`);
      }
      if (now - t0 > opts.timeoutMs) throw new Error(`${label}: not at the end of the log after ${opts.timeoutMs} ms`);
      await Promise.race([timed.done, sleep(250)]);
    }
  } catch (e) {
    timed.stop();
    await target.interrupt?.().catch(() => undefined);
    throw e;
  } finally {
    clearInterval(progress);
    await host.stop();
  }
  const cpuFigures = cpu();
  const stored = await target.store.checkpoints();
  const short = [...ends].filter(([k, end]) => (stored.get(k) ?? 0n) < end);
  if (short.length > 0) throw new Error(`${label}: stored checkpoints short of the log end at ${short.join("; ")}`);
  const joinedAt = kafka.joinedAt.get(groupId) ?? t0;
  const ms = timed.doneAt - joinedAt;
  const { events: applied, batches } = host.stats;
  say(`${label}: ${events} events in ${(ms / 1000).toFixed(2)} s = ${Math.round(events / (ms / 1000))} events/s`);
  return {
    ms: r1(ms),
    joinMs: r1(joinedAt - t0),
    eventsPerSecond: r1(events / (ms / 1000)),
    batches,
    eventsApplied: applied,
    eventsPerBatch: r1(applied / Math.max(1, batches)),
    storeApplies: timed.applies,
    /** More than one: the group rebalanced while projecting (a member that missed its heartbeats). */
    groupJoins: kafka.joins.get(groupId) ?? 0,
    cpu: cpuFigures,
  };
}

// --- PostgreSQL ----------------------------------------------------------------------------------

async function baseTables(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1`,
    [schema],
  );
  return rows.map((r) => r.table_name);
}

/**
 * The projected schema's final rows inserted into an empty copy of its tables (LIKE ... INCLUDING
 * ALL: defaults, constraints, indexes), STATEMENT_ROWS rows per INSERT, a transaction per `txRows`
 * rows, on one connection. Only the inserts are timed.
 */
async function pgBare(pool: pg.Pool, source: string, target: string, txRows: number, events: number) {
  const [src, dst] = [schemaIdent(source), schemaIdent(target)];
  const tables = await baseTables(pool, source);
  await pool.query(`CREATE SCHEMA ${dst}`);
  const byTable = new Map<string, string[]>();
  for (const t of tables) {
    await pool.query(`CREATE TABLE ${dst}."${t}" (LIKE ${src}."${t}" INCLUDING ALL)`);
    const { rows } = await pool.query<{ j: string }>(`SELECT row_to_json(r)::text AS j FROM ${src}."${t}" r`);
    byTable.set(
      t,
      rows.map((r) => r.j),
    );
  }
  // The plan is built before the clock starts: statements of at most STATEMENT_ROWS rows, grouped
  // into transactions of txRows rows (a statement never spans two).
  const plan: { table: string; json: string }[][] = [];
  let [tx, inTx] = [[] as { table: string; json: string }[], 0];
  for (const [table, rows] of byTable) {
    for (let i = 0; i < rows.length;) {
      const n = Math.min(STATEMENT_ROWS, txRows - inTx, rows.length - i);
      tx.push({ table, json: `[${rows.slice(i, i + n).join(",")}]` });
      [i, inTx] = [i + n, inTx + n];
      if (inTx >= txRows) [tx, inTx] = [(plan.push(tx), []), 0];
    }
  }
  if (tx.length > 0) plan.push(tx);
  const client = await pool.connect();
  let ms: number;
  try {
    const t0 = performance.now();
    for (const statements of plan) {
      await client.query("BEGIN");
      for (const { table, json } of statements) {
        await client.query(
          `INSERT INTO ${dst}."${table}" SELECT * FROM json_populate_recordset(null::${dst}."${table}", $1::json)`,
          [json],
        );
      }
      await client.query("COMMIT");
    }
    ms = performance.now() - t0;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
  const perTable: Record<string, number> = {};
  for (const [t, rows] of byTable) {
    const { rows: n } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${dst}."${t}"`);
    if (n[0]!.n !== rows.length) throw new Error(`bare copy of ${t}: ${n[0]!.n} rows written, ${rows.length} read`);
    perTable[t] = rows.length;
  }
  const rows = sum(Object.values(perTable));
  return {
    ms: r1(ms),
    eventsPerSecond: r1(events / (ms / 1000)),
    rows,
    rowsPerSecond: r1(rows / (ms / 1000)),
    rowsPerTransaction: txRows,
    transactions: plan.length,
    statements: sum(plan.map((p) => p.length)),
    perTable,
  };
}

async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${schemaIdent(schema)} CASCADE`);
}

// --- MongoDB -------------------------------------------------------------------------------------

/**
 * The projected collections' final documents inserted into fresh collections with the same indexes
 * (StateStore.ensureIndexes under another prefix), unordered bulk writes of STATEMENT_ROWS
 * insertOne operations, one after another. Only the writes are timed.
 */
async function mongoBare(db: Db, source: StateStore, targetPrefix: string, events: number) {
  const target = new StateStore(db, { collectionPrefix: targetPrefix });
  await target.ensureIndexes();
  const docs = new Map<string, Document[]>();
  for (const c of STATE_COLLECTIONS) docs.set(c, await db.collection(source.collections[c]).find({}).toArray());
  const batches: { collection: string; ops: AnyBulkWriteOperation[] }[] = [];
  for (const c of STATE_COLLECTIONS) {
    const all = docs.get(c)!;
    for (let i = 0; i < all.length; i += STATEMENT_ROWS) {
      const ops = all.slice(i, i + STATEMENT_ROWS).map((document) => ({ insertOne: { document } }));
      batches.push({ collection: target.collections[c], ops });
    }
  }
  const t0 = performance.now();
  for (const { collection, ops } of batches) await db.collection(collection).bulkWrite(ops, { ordered: false });
  const ms = performance.now() - t0;
  const perCollection: Record<string, number> = {};
  for (const c of STATE_COLLECTIONS) {
    const n = await db.collection(target.collections[c]).countDocuments({});
    if (n !== docs.get(c)!.length)
      throw new Error(`bare copy of ${c}: ${n} documents written, ${docs.get(c)!.length} read`);
    perCollection[c] = n;
  }
  const documents = sum(Object.values(perCollection));
  return {
    ms: r1(ms),
    eventsPerSecond: r1(events / (ms / 1000)),
    documents,
    documentsPerSecond: r1(documents / (ms / 1000)),
    bulkWrites: batches.length,
    perCollection,
  };
}

async function dropCollections(db: Db, prefix: string): Promise<void> {
  for (const name of Object.values(stateCollections(prefix))) await db.dropCollection(name).catch(() => undefined);
}

/** Rejects when `work` has not settled after `ms`; for clean-up calls to a server that may have stopped answering. */
function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

// --- the run -------------------------------------------------------------------------------------

type PgRun = { projection: Awaited<ReturnType<typeof project>>; bare: Awaited<ReturnType<typeof pgBare>> };
type MongoRun = {
  projection: Awaited<ReturnType<typeof project>>;
  bare: Awaited<ReturnType<typeof mongoBare>>;
  /** What the state store asked of FerretDB while projecting, per command. */
  commands: CommandStats;
};

type CommandStats = Record<string, { count: number; meanMs: number; statements: number; maxStatements: number }>;

/**
 * Counts the commands a client sends while `recording`, per command and collection, with their
 * mean duration and, for writes, their statements (FerretDB's deadlock depends on how many statements one command holds).
 */
function watchCommands(client: MongoClient) {
  const started = new Map<number, { n: number; collection: string }>();
  let stats: CommandStats = {};
  let recording = false;
  client.on("commandStarted", (e) => {
    if (!recording) return;
    const body = e.command as { updates?: unknown[]; documents?: unknown[]; deletes?: unknown[] };
    const n = (body.updates ?? body.documents ?? body.deletes ?? []).length;
    started.set(e.requestId, { n, collection: String((e.command as Document)[e.commandName]) });
  });
  const done = (e: { requestId: number; commandName: string; duration: number }) => {
    if (!recording || !started.has(e.requestId)) return;
    const { n, collection } = started.get(e.requestId)!;
    started.delete(e.requestId);
    const s = (stats[`${e.commandName} ${collection}`] ??= { count: 0, meanMs: 0, statements: 0, maxStatements: 0 });
    s.meanMs += (e.duration - s.meanMs) / ++s.count;
    s.statements += n;
    s.maxStatements = Math.max(s.maxStatements, n);
  };
  client.on("commandSucceeded", done);
  client.on("commandFailed", done);
  return {
    start() {
      [stats, recording] = [{}, true];
      started.clear();
    },
    stop(): CommandStats {
      recording = false;
      for (const s of Object.values(stats)) s.meanMs = r1(s.meanMs);
      return stats;
    },
  };
}

function summarize(runs: { projection: { eventsPerSecond: number }; bare: { eventsPerSecond: number } }[]) {
  if (runs.length === 0) return undefined;
  const projection = spread(runs.map((r) => r.projection.eventsPerSecond));
  const bare = spread(runs.map((r) => r.bare.eventsPerSecond));
  return {
    projection,
    bare,
    ratio: r3(projection.median / bare.median),
    ratiosPerRep: runs.map((r) => r3(r.projection.eventsPerSecond / r.bare.eventsPerSecond)),
  };
}

export async function runProjectionsBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await projectionsBench(urls, args)).code;
}

export type ProjectionsResult = Awaited<ReturnType<typeof projectionsBench>>["result"];

/** Prints the tables and returns the result; writes bench/results/projections-<at>.json unless `write` is false. */
export async function projectionsBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const opts = options(args);
  const started = performance.now();
  const say: Say = (line) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
  const at = new Date().toISOString();
  const rand = randomUUID().replace(/-/g, "").slice(0, 8);
  const prefix = `bench-proj-${rand}.`;
  const kafka = new BenchKafka(urls.kafkaBrokers);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 8 });
  const mongo = new MongoClient(urls.mongoUrl, { serverSelectionTimeoutMS: 10_000, monitorCommands: true });
  const mongoCommands = watchCommands(mongo);
  const loadBefore = os.loadavg().map(r1);
  const [schemas, collectionPrefixes, failures] = [[] as string[], [] as string[], [] as string[]];
  let mongoStalled = false;
  const perApply = opts.mongoApplyEvents ? ` (at most ${opts.mongoApplyEvents} events per store apply)` : "";
  say(
    `topic prefix ${prefix}; ${opts.goals} goals x ${TASKS_PER_GOAL} tasks; ${opts.reps} reps; ${os.cpus().length} cpus`,
  );

  let support: Support | undefined;
  let log: RecordedLog;
  const [pgRuns, mongoRuns]: [PgRun[], MongoRun[]] = [[], []];
  try {
    support = await testSupport(urls);
    log = await recordLog(kafka, codec, support, prefix, opts, say);

    try {
      for (let r = 1; r <= opts.reps; r++) {
        const [schema, bare] = [`bench_proj_${rand}_r${r}`, `bench_bare_${rand}_r${r}`];
        schemas.push(schema, bare);
        await migrate(pool, schema);
        say(`postgres ${r}/${opts.reps}: projecting ${log.events.analytics} events into schema ${schema}`);
        const store = new AnalyticsStore(pool, { schema });
        const topics = PROJECTED_TOPICS.analytics;
        const projection = await project(kafka, codec, prefix, { store }, topics, log, `pg-r${r}`, opts, say);
        const txRows = Math.max(1, Math.round(projection.eventsPerBatch));
        say(`postgres ${r}/${opts.reps}: bare insert of the final rows into schema ${bare} (${txRows} rows/tx)`);
        const b = await pgBare(pool, schema, bare, txRows, log.events.analytics);
        say(
          `postgres ${r}/${opts.reps}: bare ${b.rows} rows in ${(b.ms / 1000).toFixed(2)} s = ${n(b.eventsPerSecond)} events/s`,
        );
        pgRuns.push({ projection, bare: b });
        await dropSchema(pool, bare);
        await dropSchema(pool, schema);
      }
    } catch (e) {
      failures.push(`postgres: ${(e as Error).message}`);
      say(`postgres: ${(e as Error).message}`);
    }

    try {
      await mongo.connect();
      const db = mongo.db();
      const interrupt = async () => {
        mongoStalled = true;
        await mongo.close(true);
      };
      for (let r = 1; r <= opts.reps; r++) {
        const [collections, bare] = [`bench_${rand}_r${r}_`, `bench_${rand}_r${r}_bare_`];
        collectionPrefixes.push(collections, bare);
        const store = new StateStore(db, { collectionPrefix: collections });
        await store.ensureIndexes();
        say(
          `mongo ${r}/${opts.reps}: projecting ${log.events.state} events into collections ${collections}*${perApply}`,
        );
        const topics = PROJECTED_TOPICS.state;
        const target = { store, maxEvents: opts.mongoApplyEvents || Infinity, interrupt };
        mongoCommands.start();
        const projection = await project(kafka, codec, prefix, target, topics, log, `mongo-r${r}`, opts, say);
        const commands = mongoCommands.stop();
        say(`mongo ${r}/${opts.reps}: bare bulk insert of the final documents into collections ${bare}*`);
        const b = await mongoBare(db, store, bare, log.events.state);
        say(
          `mongo ${r}/${opts.reps}: bare ${b.documents} documents in ${(b.ms / 1000).toFixed(2)} s = ${n(b.eventsPerSecond)} events/s`,
        );
        mongoRuns.push({ projection, bare: b, commands });
        await dropCollections(db, bare);
        await dropCollections(db, collections);
      }
    } catch (e) {
      const why = `${(e as Error).message}${mongoStalled ? `; ${FERRETDB_STALL}` : ""}`;
      failures.push(`mongo: ${why}`);
      say(`mongo: ${why}`);
    }
  } finally {
    say("cleaning up: schemas, collections, topics and consumer groups");
    for (const s of schemas)
      await dropSchema(pool, s).catch((e: Error) => say(`could not drop schema ${s}: ${e.message}`));
    if (collectionPrefixes.length > 0 && mongoStalled) {
      say(
        `FerretDB stopped answering: after restarting it, drop the collections named ${collectionPrefixes[0]}*, bench_${rand}_r*`,
      );
    } else if (collectionPrefixes.length > 0) {
      const db = mongo.db();
      for (const p of collectionPrefixes) {
        await bounded(dropCollections(db, p), 30_000, `dropping ${p}*`).catch((e: Error) => say(e.message));
      }
    }
    if (support) {
      await support
        .removePrefix(kafka, prefix)
        .catch((e: Error) => say(`could not delete the bench topics and groups: ${e.message}`));
    }
    await pool.end().catch(() => undefined);
    await mongo.close(true).catch(() => undefined);
  }

  const pgSummary = summarize(pgRuns);
  const mongoSummary = summarize(mongoRuns);
  const pgRows = pgRuns.length > 0 ? spread(pgRuns.map((r) => r.bare.rowsPerSecond)) : undefined;
  const mongoDocs = mongoRuns.length > 0 ? spread(mongoRuns.map((r) => r.bare.documentsPerSecond)) : undefined;
  const result = {
    at,
    command: `npm run bench:projections${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
    N: opts.goals,
    M: TASKS_PER_GOAL,
    reps: opts.reps,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: process.platform },
    loadAverage: { before: loadBefore, after: os.loadavg().map(r1) },
    topicPrefix: prefix,
    notes:
      "Log: the hierarchy (test/support/hierarchy.ts testTopology, TEN_TASK_DAG) runs N goals to their end, then stops; records counted read_committed. " +
      "Projection: a ProjectionHost (fresh consumer group, fresh schema / collections) from offset 0 until every checkpoint the store writes reaches the high watermark (then checked in the store); clock from the group join to that write. " +
      (opts.mongoApplyEvents
        ? `The state store is given at most ${opts.mongoApplyEvents} events per apply (the host's batch split in log order, each part with its own checkpoint). `
        : "") +
      `PostgreSQL baseline: the projection's final rows (every base table but schema_migrations) inserted into CREATE TABLE (LIKE ... INCLUDING ALL) copies with INSERT ... SELECT * FROM json_populate_recordset, ${STATEMENT_ROWS} rows per statement, a transaction per the projection's mean events per batch, one connection. ` +
      `MongoDB baseline: the final documents (every collection, checkpoints included) bulkWritten as insertOne (ordered: false, ${STATEMENT_ROWS} per bulk) into fresh collections with the same indexes, one bulk at a time. ` +
      "Only the writes are timed; baseline events/s = the log's events / that time. Ratios: median over median, and per rep.",
    options: opts,
    failures,
    log: { ...log, ends: Object.fromEntries([...log.ends].map(([k, v]) => [k, Number(v)])) },
    postgres: {
      events: log.events.analytics,
      projectionEventsPerSecond: pgSummary?.projection,
      bareEventsPerSecond: pgSummary?.bare,
      bareRowsPerSecond: pgRows,
      ratio: pgSummary?.ratio,
      ratiosPerRep: pgSummary?.ratiosPerRep,
      runs: pgRuns,
    },
    mongo: {
      events: log.events.state,
      maxEventsPerApply: opts.mongoApplyEvents,
      projectionEventsPerSecond: mongoSummary?.projection,
      bareEventsPerSecond: mongoSummary?.bare,
      bareDocumentsPerSecond: mongoDocs,
      ratio: mongoSummary?.ratio,
      ratiosPerRep: mongoSummary?.ratiosPerRep,
      runs: mongoRuns,
    },
    target: 0.5,
  };

  const row = (...cells: unknown[]) => `| ${cells.join(" | ")} |`;
  const figures = (x: Spread | undefined) => (x ? [n(x.median), n(x.min), n(x.max)] : ["-", "-", "-"]);
  const out = [
    row("measure", "median", "min", "max"),
    row("---", "---", "---", "---"),
    row(`PostgreSQL projection: events/s (${log.events.analytics} events)`, ...figures(pgSummary?.projection)),
    row(`PostgreSQL bare insert: events/s (${pgRuns[0]?.bare.rows ?? "-"} rows)`, ...figures(pgSummary?.bare)),
    row("PostgreSQL bare insert: rows/s", ...figures(pgRows)),
    row(
      `MongoDB projection: events/s (${log.events.state} events${opts.mongoApplyEvents ? `, <= ${opts.mongoApplyEvents} per apply` : ""})`,
      ...figures(mongoSummary?.projection),
    ),
    row(
      `MongoDB bare insert: events/s (${mongoRuns[0]?.bare.documents ?? "-"} documents)`,
      ...figures(mongoSummary?.bare),
    ),
    row("MongoDB bare insert: documents/s", ...figures(mongoDocs)),
    "",
    row("ratio projection / bare (target >= 0.5)", "median", "per rep"),
    row("---", "---", "---"),
    row("PostgreSQL", pgSummary ? `**${pgSummary.ratio.toFixed(3)}**` : "-", pgSummary?.ratiosPerRep.join(", ") ?? "-"),
    row(
      "MongoDB",
      mongoSummary ? `**${mongoSummary.ratio.toFixed(3)}**` : "-",
      mongoSummary?.ratiosPerRep.join(", ") ?? "-",
    ),
    "",
    `log: ${opts.goals} goals (${JSON.stringify(log.outcomes)}), records per topic ${JSON.stringify(log.perTopic)}`,
  ];
  for (const [label, runs] of [
    ["PostgreSQL", pgRuns],
    ["MongoDB", mongoRuns],
  ] as const) {
    for (const [i, { projection: p }] of runs.entries()) {
      const cpu = `machine ${Math.round(p.cpu.machineBusy * 100)}% busy, this process ${p.cpu.processCpuCores} cores`;
      out.push(
        `${label} rep ${i + 1}: ${(p.ms / 1000).toFixed(2)} s after a ${r1(p.joinMs)} ms group join (${p.groupJoins} join(s)); ${p.batches} host batches (~${p.eventsPerBatch} events), ${p.storeApplies} store applies; ${cpu}`,
      );
    }
  }
  for (const [i, { commands }] of mongoRuns.entries()) {
    const each = Object.entries(commands)
      .sort(([, a], [, b]) => b.count * b.meanMs - a.count * a.meanMs)
      .map(
        ([name, c]) =>
          `${name} ${c.count} x ${c.meanMs} ms${c.maxStatements ? ` (<= ${c.maxStatements} statements)` : ""}`,
      );
    out.push(`MongoDB rep ${i + 1} commands while projecting: ${each.join(", ")}`);
  }
  for (const f of failures) out.push(`FAILED ${f}`);
  for (const line of out) console.log(line);

  if (write) {
    const file = path.join(repoRoot, "bench/results", `projections-${at.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, file)}`);
  }
  return { code: failures.length === 0 ? 0 : 1, result };
}
