/**
 * `node_modules/.bin/node --import tsx bench/kafka-clients.ts [--messages N --rounds R]`: kafkajs
 * (Polity's client, patched) beside @platformatic/kafka, like for like, on the dev broker
 * (KAFKA_BROKERS, default 127.0.0.1:19092). An evaluation only: .polity/notes/platformatic-report.md.
 *
 * For each client and round:
 * - produce: N keyed records (~300-byte values, one header) sent by a plain idempotent producer to a
 *   fresh 6-partition topic, 500 at a time, each send awaited (as bench/flow.ts's filler does);
 * - exactly-once loop: N records pre-filled (by kafkajs, the same bytes for both clients) into a
 *   fresh 6-partition input topic are moved to an output topic by one read_committed consumer group
 *   and one transactional producer, one transaction per fetched batch of a partition, with the
 *   consumed offsets committed in the transaction (kafkajs sendOffsets; platformatic
 *   addConsumer + addOffset), retried on CONCURRENT_TRANSACTIONS as the hosts do; clock from group
 *   join to the last commit. Both use the hosts' consumer settings (bench/flow.ts HOST_CONSUMER:
 *   session 10 s, heartbeat 1 s, max wait 200 ms), kafkajs's fetch sizes (10 MB a response, 1 MB a
 *   partition) and producer retry (producers/writer.ts TRANSACTIONAL_RETRY: 14 from 2 ms, doubling).
 * The clients take turns (kafkajs, platformatic, kafkajs, ...) so that a noisy neighbour slows both
 * alike; the report gives medians, min/max and the ratio platformatic / kafkajs, prints a markdown
 * table and writes bench/results/kafka-clients-<at>.json. Topics and groups carry a unique prefix
 * and are deleted at the end (BENCH_KEEP_TOPICS=1 keeps them). Progress goes to stderr.
 *
 * The platformatic consumer has no eachBatch: it is a stream of records. The loop takes what one
 * fetch response delivered (the stream pushes a response's records in one go, so they are all
 * there at the next setImmediate), pauses the stream, runs one transaction per partition of it,
 * and resumes. Its output partitioner is compatibilityPartitioner (Java's and kafkajs's murmur2);
 * the default one masks the hash differently and would place keys elsewhere.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import {
  compatibilityPartitioner,
  Consumer as PltConsumer,
  FetchIsolationLevels,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  Producer as PltProducer,
  type Message as PltMessage,
} from "@platformatic/kafka";
import type { Admin, IHeaders, Kafka, Transaction } from "kafkajs";
import { defineCommand, parseArgvOrExit, wholeNumber } from "../lib/cli-args.js";
import { repoRoot } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { runIfMain } from "../lib/process.js";
import { TRANSACTIONAL_RETRY } from "../producers/writer.js";

/** Not exported by the package's index. */
type PltTransaction = Awaited<ReturnType<PltProducer["beginTransaction"]>>;
const CLIENTS = ["kafkajs", "platformatic"] as const;
type ClientName = (typeof CLIENTS)[number];
const PARTITIONS = 6;
const VALUE_BYTES = 300;
const SEND_CHUNK = 500;
/** bench/flow.ts HOST_CONSUMER: processors/host/tier-host.ts's consumer settings. */
const HOST_CONSUMER = { sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 200 };
/** kafkajs's consumer defaults, given to platformatic too (its own default is 50 MB for both). */
const FETCH = { maxBytes: 10 * 1024 * 1024, maxBytesPerPartition: 1024 * 1024 };
const ROUND_TIMEOUT_MS = 120_000;

export const KAFKA_CLIENTS_BENCH_COMMAND = defineCommand({
  name: "bench kafka-clients",
  summary: "kafkajs beside @platformatic/kafka: idempotent produce and a bare exactly-once loop",
  options: {
    messages: { type: "string", value: "N", help: "records per round and client (default 20000)" },
    rounds: { type: "string", value: "R", help: "rounds per client, interleaved (default 3)" },
  },
  notes: "KAFKA_BROKERS (default 127.0.0.1:19092); BENCH_KEEP_TOPICS=1 keeps the run's topics and groups.",
});

type Say = (line: string) => void;
type Record_ = { key: Buffer; value: Buffer; headers: { "polity.type": Buffer } };
export interface ProduceRound {
  client: ClientName;
  round: number;
  elapsedMs: number;
  eventsPerSecond: number;
  /** This process's CPU (user + system) over the timed window, per 1,000 records: the client's own cost. */
  cpuMsPer1000: number;
}
export interface LoopRound extends ProduceRound {
  moved: number;
  transactions: number;
  eventsPerTransaction: number;
  /** Transactions tried again (CONCURRENT_TRANSACTIONS and the like). */
  retries: number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(done: () => boolean, timeoutMs: number, what: string, failed?: () => unknown): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    const failure = failed?.();
    if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** N records as the flow's events look: keyed by goal, a type header, ~300 bytes of value. */
function records(n: number): Record_[] {
  return Array.from({ length: n }, (_, i) => ({
    key: Buffer.from(`bench-goal-${i % 1000}`),
    value: randomBytes(VALUE_BYTES),
    headers: { "polity.type": Buffer.from("TaskCompleted") },
  }));
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

async function createTopics(kafka: Kafka, names: string[]): Promise<void> {
  const topics = names.map((topic) => ({ topic, numPartitions: PARTITIONS }));
  await withAdmin(kafka, (admin) => admin.createTopics({ waitForLeaders: true, topics }));
}

/** Not timed: both loops read the same bytes, written the same way. */
async function fill(kafka: Kafka, topic: string, messages: Record_[]): Promise<void> {
  const filler = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await filler.connect();
  try {
    for (let i = 0; i < messages.length; i += SEND_CHUNK) {
      await filler.send({ topic, messages: messages.slice(i, i + SEND_CHUNK) });
    }
  } finally {
    await filler.disconnect();
  }
}

const retriable = (e: unknown) =>
  Boolean((e as { retriable?: boolean; canRetry?: boolean }).retriable ?? (e as { canRetry?: boolean }).canRetry) ||
  /concurrent/i.test(`${String(e)} ${String((e as { cause?: unknown }).cause ?? "")}`);

/** bench/flow.ts's transactionWithRetry (as TierHost.commit does), for either client. */
async function withRetry<T extends { commit(): Promise<void>; abort(): Promise<void> }>(
  begin: () => Promise<T>,
  work: (tx: T) => Promise<void>,
  onRetry: () => void,
  discard: (tx: T) => Promise<void> = async () => undefined,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const tx = await begin();
    try {
      await work(tx);
      await tx.commit();
      return;
    } catch (e) {
      await tx.abort().catch(() => discard(tx));
      if (attempt >= 8 || !retriable(e)) throw e;
      onRetry();
      await sleep(20 * attempt);
    }
  }
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};

const produceRound = (client: ClientName, round: number, n: number, elapsedMs: number, cpu: number): ProduceRound => ({
  client,
  round,
  elapsedMs: r1(elapsedMs),
  eventsPerSecond: r1(n / (elapsedMs / 1000)),
  cpuMsPer1000: r1((cpu / n) * 1000),
});

async function produceKafkajs(kafka: Kafka, topic: string, messages: Record_[], round: number) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const [t0, cpu0] = [performance.now(), process.cpuUsage()];
    for (let i = 0; i < messages.length; i += SEND_CHUNK) {
      await producer.send({ topic, messages: messages.slice(i, i + SEND_CHUNK) });
    }
    return produceRound("kafkajs", round, messages.length, performance.now() - t0, cpuMs(cpu0));
  } finally {
    await producer.disconnect();
  }
}

async function producePlatformatic(brokers: string[], topic: string, messages: Record_[], round: number) {
  const producer = new PltProducer({
    clientId: "polity-bench-clients",
    bootstrapBrokers: brokers,
    idempotent: true,
    partitioner: compatibilityPartitioner,
  });
  try {
    // What kafkajs's connect() does before the clock: the producer id.
    await producer.initIdempotentProducer({});
    // Its own shape, made before the clock as kafkajs's is: header keys as Buffers (no serializers).
    const own = messages.map(({ key, value, headers }) => {
      const map = new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), v] as const));
      return { key, value, headers: map, topic };
    });
    const [t0, cpu0] = [performance.now(), process.cpuUsage()];
    for (let i = 0; i < own.length; i += SEND_CHUNK) {
      await producer.send({ messages: own.slice(i, i + SEND_CHUNK) });
    }
    return produceRound("platformatic", round, messages.length, performance.now() - t0, cpuMs(cpu0));
  } finally {
    await producer.close();
  }
}

type Clock = { joinedAt?: number; doneAt?: number; cpu0?: NodeJS.CpuUsage; cpu?: number };
const joined = (c: Clock) => {
  c.joinedAt ??= performance.now();
  c.cpu0 ??= process.cpuUsage();
};
const done = (c: Clock) => {
  if (c.doneAt !== undefined) return;
  c.doneAt = performance.now();
  c.cpu = cpuMs(c.cpu0!);
};

function loopRound(client: ClientName, round: number, n: number, clock: Clock, tx: number, retries: number) {
  const base = produceRound(client, round, n, clock.doneAt! - clock.joinedAt!, clock.cpu!);
  return { ...base, moved: n, transactions: tx, eventsPerTransaction: r1(n / Math.max(1, tx)), retries };
}

/** bench/flow.ts's baselineRound with the hosts' producer retry, on fresh topics. */
async function loopKafkajs(kafka: Kafka, input: string, output: string, groupId: string, n: number, round: number) {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    transactionalId: groupId,
    retry: TRANSACTIONAL_RETRY,
  });
  const consumer = kafka.consumer({ groupId, ...HOST_CONSUMER, ...FETCH });
  let [moved, transactions, retries] = [0, 0, 0];
  const clock: Clock = {};
  let failure: unknown;
  consumer.on(consumer.events.GROUP_JOIN, () => joined(clock));
  consumer.on(consumer.events.CRASH, ({ payload }) => (failure ??= payload.error));
  await producer.connect();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: input, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // One producer holds one transaction at a time, so the partitions take turns.
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isStale }) => {
        const last = batch.messages.at(-1)?.offset;
        if (last === undefined || isStale()) return;
        const copies = batch.messages.map(({ key, value, headers }) => ({ key, value, headers: headers as IHeaders }));
        const partitions = [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }];
        await withRetry<Transaction>(
          () => producer.transaction(),
          async (tx) => {
            await tx.send({ topic: output, messages: copies });
            await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: batch.topic, partitions }] });
          },
          () => retries++,
        );
        [moved, transactions] = [moved + batch.messages.length, transactions + 1];
        resolveOffset(last);
        await heartbeat();
        if (moved >= n) done(clock);
      },
    });
    await waitFor(
      () => clock.doneAt !== undefined,
      ROUND_TIMEOUT_MS,
      `kafkajs to move ${n} records`,
      () => failure,
    );
    return { ...loopRound("kafkajs", round, n, clock, transactions, retries), moved };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
}

/** The same loop on @platformatic/kafka: one transaction per partition of what one fetch delivered. */
async function loopPlatformatic(
  brokers: string[],
  input: string,
  output: string,
  groupId: string,
  n: number,
  round: number,
) {
  const clientId = "polity-bench-clients";
  const producer = new PltProducer({
    clientId,
    bootstrapBrokers: brokers,
    idempotent: true,
    transactionalId: groupId,
    retries: TRANSACTIONAL_RETRY.retries,
    // Doubling from the same first wait, as kafkajs does (platformatic's own is a fixed delay).
    retryDelay: (_client, _operation, attempt) => TRANSACTIONAL_RETRY.initialRetryTime * 2 ** (attempt - 1),
    partitioner: compatibilityPartitioner,
  });
  const consumer = new PltConsumer({
    clientId,
    groupId,
    bootstrapBrokers: brokers,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    sessionTimeout: HOST_CONSUMER.sessionTimeout,
    heartbeatInterval: HOST_CONSUMER.heartbeatInterval,
    maxWaitTime: HOST_CONSUMER.maxWaitTimeInMs,
    ...FETCH,
    autocommit: false,
  });
  let [moved, transactions, retries] = [0, 0, 0];
  const clock: Clock = {};
  let failure: unknown;
  consumer.on("consumer:group:join", () => joined(clock));
  try {
    // What kafkajs's connect() does before the clock: the transaction coordinator and producer id.
    await (await producer.beginTransaction()).cancel();
    const stream = await consumer.consume({
      topics: [input],
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
    });
    let pending: PltMessage[] = [];
    let scheduled = false;
    const flush = async () => {
      stream.pause();
      const taken = pending;
      pending = [];
      const byPartition = new Map<number, PltMessage[]>();
      for (const m of taken) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
      for (const batch of byPartition.values()) {
        const copies = batch.map(({ key, value, headers }) => ({ key, value, headers, topic: output }));
        await withRetry<PltTransaction>(
          () => producer.beginTransaction(),
          async (tx) => {
            await tx.send({ messages: copies });
            await tx.addConsumer(consumer);
            await tx.addOffset(batch.at(-1)!);
          },
          () => retries++,
          (tx) => tx.cancel(),
        );
        [moved, transactions] = [moved + batch.length, transactions + 1];
        if (moved >= n) done(clock);
      }
      scheduled = false;
      stream.resume();
    };
    stream.on("error", (e) => (failure ??= e));
    stream.on("data", (message) => {
      pending.push(message);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => flush().catch((e: unknown) => (failure ??= e)));
    });
    await waitFor(
      () => clock.doneAt !== undefined,
      ROUND_TIMEOUT_MS,
      `platformatic to move ${n} records`,
      () => failure,
    );
    await stream.close();
    return { ...loopRound("platformatic", round, n, clock, transactions, retries), moved };
  } finally {
    await consumer.close(true).catch(() => undefined);
    await producer.close(true).catch(() => undefined);
  }
}

function summary(rounds: ProduceRound[]) {
  const rates = rounds.map((r) => r.eventsPerSecond).sort((a, b) => a - b);
  const median =
    rates.length % 2 ? rates[rates.length >> 1]! : (rates[rates.length / 2 - 1]! + rates[rates.length / 2]!) / 2;
  const cpu = rounds.map((r) => r.cpuMsPer1000).sort((a, b) => a - b);
  const cpuMsPer1000 = cpu.length % 2 ? cpu[cpu.length >> 1]! : (cpu[cpu.length / 2 - 1]! + cpu[cpu.length / 2]!) / 2;
  return { median: r1(median), min: rates[0]!, max: rates.at(-1)!, cpuMsPer1000: r1(cpuMsPer1000), rounds };
}

export interface KafkaClientsOptions {
  brokers: string[];
  messages: number;
  rounds: number;
  keepTopics?: boolean;
  write?: boolean;
  say?: Say;
}

/** The benchmark: returns its result, prints its table, writes bench/results/kafka-clients-<at>.json. */
export async function kafkaClientsBench(opts: KafkaClientsOptions) {
  const started = performance.now();
  const say: Say =
    opts.say ??
    ((line) =>
      process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`));
  const at = new Date().toISOString();
  const prefix = `bench-clients-${at.replace(/[-:.TZ]/g, "").slice(0, 17)}.`;
  const kafka = kafkaClient(opts.brokers, "polity-bench-clients");
  const messages = records(opts.messages);
  const loadBefore = os.loadavg().map(r1);
  const produce: Record<ClientName, ProduceRound[]> = { kafkajs: [], platformatic: [] };
  const loop: Record<ClientName, LoopRound[]> = { kafkajs: [], platformatic: [] };
  say(`topic prefix ${prefix}; ${opts.messages} records x ${opts.rounds} rounds per client; ${os.cpus().length} cpus`);
  try {
    for (let r = 1; r <= opts.rounds; r++) {
      for (const client of CLIENTS) {
        const topic = `${prefix}produce-${client}-${r}`;
        await createTopics(kafka, [topic]);
        const result =
          client === "kafkajs"
            ? await produceKafkajs(kafka, topic, messages, r)
            : await producePlatformatic(opts.brokers, topic, messages, r);
        produce[client].push(result);
        say(`round ${r}/${opts.rounds} ${client} produce: ${Math.round(result.eventsPerSecond)} records/s`);
      }
      for (const client of CLIENTS) {
        const [input, output, groupId] = [
          `${prefix}${client}-${r}.in`,
          `${prefix}${client}-${r}.out`,
          `${prefix}${client}-${r}`,
        ];
        await createTopics(kafka, [input, output]);
        await fill(kafka, input, messages);
        const result =
          client === "kafkajs"
            ? await loopKafkajs(kafka, input, output, groupId, messages.length, r)
            : await loopPlatformatic(opts.brokers, input, output, groupId, messages.length, r);
        loop[client].push(result);
        const { eventsPerSecond: rate, transactions: tx, retries } = result;
        say(
          `round ${r}/${opts.rounds} ${client} exactly-once loop: ${Math.round(rate)} records/s, ${tx} transactions, ${retries} retried`,
        );
      }
    }
  } finally {
    if (!opts.keepTopics) {
      await withAdmin(kafka, async (admin) => {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
        if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
        const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
        if (groups.length > 0) await admin.deleteGroups(groups);
        say(`deleted ${topics.length} topics and ${groups.length} groups`);
      }).catch((e: Error) => say(`could not delete the bench topics and groups: ${e.message}`));
    }
  }

  const versions = Object.fromEntries(
    ["kafkajs", "@platformatic/kafka"].map((name) => {
      const file = path.join(repoRoot, "node_modules", name, "package.json");
      return [name, (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version];
    }),
  );
  const figures = (rounds: Record<ClientName, ProduceRound[]>) => {
    const [k, p] = [summary(rounds.kafkajs), summary(rounds.platformatic)];
    return {
      kafkajs: k,
      platformatic: p,
      ratio: r3(p.median / k.median),
      cpuRatio: r3(p.cpuMsPer1000 / k.cpuMsPer1000),
    };
  };
  const result = {
    at,
    command: `node_modules/.bin/node --import tsx bench/kafka-clients.ts --messages ${opts.messages} --rounds ${opts.rounds}`,
    versions,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: process.platform },
    loadAverage: { before: loadBefore, after: os.loadavg().map(r1) },
    topicPrefix: prefix,
    messages: opts.messages,
    valueBytes: VALUE_BYTES,
    partitions: PARTITIONS,
    rounds: opts.rounds,
    notes:
      "produce: plain idempotent producer, awaited sends of 500 keyed records to a fresh 6-partition topic. " +
      "loop: read_committed group + transactional producer moving the records between fresh 6-partition topics, one transaction per " +
      "fetched batch of a partition with the consumed offsets committed in it, retried like the hosts; clock from group join to last commit. " +
      "Rounds interleaved kafkajs, platformatic; ratio = platformatic median / kafkajs median.",
    produce: figures(produce),
    loop: figures(loop),
  };

  const n = (x: number) => Math.round(x).toLocaleString("en");
  const row = (...cells: unknown[]) => `| ${cells.join(" | ")} |`;
  const line = (what: string, f: ReturnType<typeof figures>, extra: (r: ProduceRound) => string = () => "") => [
    row(
      what,
      `${n(f.kafkajs.median)} (${n(f.kafkajs.min)}-${n(f.kafkajs.max)})${extra(f.kafkajs.rounds[0]!)}`,
      `${n(f.platformatic.median)} (${n(f.platformatic.min)}-${n(f.platformatic.max)})${extra(f.platformatic.rounds[0]!)}`,
      `**${f.ratio.toFixed(3)}**`,
    ),
  ];
  const perTx = (rounds: LoopRound[]) => r1(rounds.reduce((s, r) => s + r.eventsPerTransaction, 0) / rounds.length);
  const out = [
    `kafkajs ${versions.kafkajs} (patched) vs @platformatic/kafka ${versions["@platformatic/kafka"]}, ${opts.messages} records of ~${VALUE_BYTES} B, ${PARTITIONS} partitions, ${opts.rounds} interleaved rounds, ${process.version}`,
    "",
    row(
      "records/s: median (min-max)",
      `kafkajs ${versions.kafkajs}`,
      `@platformatic/kafka ${versions["@platformatic/kafka"]}`,
      "platformatic / kafkajs",
    ),
    row("---", "---", "---", "---"),
    ...line("idempotent produce", result.produce),
    ...line("exactly-once loop (group join to last commit)", result.loop),
    ...(["produce", "loop"] as const).map((m) => {
      const f = result[m];
      const what = `${m === "produce" ? "produce" : "loop"}: client CPU ms per 1,000 records (median; lower is better)`;
      return row(what, f.kafkajs.cpuMsPer1000, f.platformatic.cpuMsPer1000, f.cpuRatio.toFixed(3));
    }),
    row(
      "loop: records per transaction (mean), retried transactions",
      `${perTx(loop.kafkajs)}, ${loop.kafkajs.reduce((s, r) => s + r.retries, 0)}`,
      `${perTx(loop.platformatic)}, ${loop.platformatic.reduce((s, r) => s + r.retries, 0)}`,
      "-",
    ),
    "",
    `load average before ${loadBefore.join(" ")}, after ${result.loadAverage.after.join(" ")} (${os.cpus().length} cpus)`,
  ];
  for (const l of out) console.log(l);
  if (opts.write ?? true) {
    const file = path.join(repoRoot, "bench/results", `kafka-clients-${at.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, file)}`);
  }
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgvOrExit(KAFKA_CLIENTS_BENCH_COMMAND);
  const brokers = (process.env.KAFKA_BROKERS || "127.0.0.1:19092").split(",").map((b) => b.trim());
  await kafkaClientsBench({
    brokers,
    messages: wholeNumber("messages", values.messages ?? "20000"),
    rounds: wholeNumber("rounds", values.rounds ?? "3"),
    keepTopics: process.env.BENCH_KEEP_TOPICS === "1",
  });
  // kafkajs and platformatic may leave sockets and timers behind a moment after close.
  process.exit(0);
}

runIfMain(import.meta.url, main);
