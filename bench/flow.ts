/**
 * `npm run bench:flow [-- --goals N --tasks M]` (or BENCH_GOALS, BENCH_TASKS; defaults 100 x 10):
 * throughput of the agent hierarchy next to a bare kafkajs transactional loop, same run, same broker.
 * BENCH_TIMEOUT_MS (300000) bounds the flow; BENCH_KEEP_TOPICS=1 keeps its topics and groups.
 *
 * Flow: all four tiers of an aamas topology run in this process on topics of their own, with
 * simulated workers that finish at once. N goals, each an explicit DAG of M tasks, are submitted
 * at once; the clock stops when a read_committed reader has seen every GoalCompleted.
 * Baseline: the flow's own events are moved between two fresh topics by one consumer group and one
 * transactional producer, one transaction per fetched batch. Only the variant whose producer retries
 * as the hosts' do is like for like; kafkajs's default waits ~300 ms before its first retry.
 * Nothing of Polity is patched, so that this survives changes to its internals.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Kafka } from "kafkajs";
import { PolityKafka } from "../lib/kafka.js";
import type { Admin, IHeaders, Producer, ProducerConfig, Transaction } from "kafkajs";
import { repoRoot, type InfraUrls } from "../lib/config.js";
import { CliExit, defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import type { Role } from "../processors/domain/directory.js";
import { startHierarchy, TIER_TOPICS } from "../processors/hierarchy.js";
import type { TopologyConfig } from "../processors/topology.js";
import { submitGoal } from "../producers/commands.js";
import { HEADER } from "../producers/envelope.js";
import { EventWriter, TRANSACTIONAL_RETRY } from "../producers/writer.js";
import { physicalTopic, TOPICS } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import type { TaskSpec } from "../schemas/generated/types.js";
import { sampleValue } from "../test/support/samples.js";

const EVENT_TOPICS = ["polity.goals.events", "polity.tasks.events"];
const PARTITIONS = TOPICS.find((t) => t.name === "polity.tasks.events")!.partitions;
/** The slots (partition numbers across its inputs) a role's host has once fully live. */
export const slotsOf = (role: Role): number =>
  Math.max(...TIER_TOPICS[role].inputs.map((name) => TOPICS.find((t) => t.name === name)!.partitions));
/** processors/host/tier-host.ts's consumer settings, so that the baseline fetches as the hosts do. */
const HOST_CONSUMER = { sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 200 };
const VARIANTS = {
  defaultRetry: { label: "kafkajs default retry", retry: null },
  hostRetry: { label: "like for like (same producer retry as the hosts)", retry: TRANSACTIONAL_RETRY },
};
type VariantKey = keyof typeof VARIANTS;
/** A round lasts about a second, and one slow retry can swing it several-fold. */
const BASELINE_ROUNDS = 3;
/** aamas: domain -> [mayors, workers per specialization]. */
export const DOMAINS: Record<string, [number, Record<string, number>]> = {
  frontend: [1, { react: 2, css: 1 }],
  backend: [2, { api: 2, database: 2 }],
  testing: [1, { "unit-test": 1, "e2e-test": 1 }],
};
/** A transaction's requests; kafkajs calls FindCoordinator GroupCoordinator. */
const TX_APIS = ["AddPartitionsToTxn", "Produce", "AddOffsetsToTxn", "GroupCoordinator", "TxnOffsetCommit", "EndTxn"];

type Say = (line: string) => void;
type Raw = { key: Buffer | null; value: Buffer | null; headers: IHeaders };
/** producedAt is the record timestamp: when its tier produced it, just before the commit. */
type Seen = { type: string; goalId: string; readAt: number; producedAt: number; raw: Raw };

export const FLOW_BENCH_COMMAND = defineCommand({
  name: "bench flow",
  summary: "hierarchy throughput next to a bare kafkajs transactional loop",
  options: {
    goals: { type: "string", value: "N", help: "goals submitted at once (default 100, or BENCH_GOALS)" },
    tasks: { type: "string", value: "M", help: "tasks per goal (default 10, or BENCH_TASKS)" },
    "timeout-ms": {
      type: "string",
      value: "ms",
      help: "the most the run may take (default 300000, or BENCH_TIMEOUT_MS)",
    },
    rate: {
      type: "string",
      value: "goals/s",
      help: "submit the goals at this steady rate instead of all at once (latency under a given load)",
    },
    "one-by-one": {
      type: "boolean",
      help: "submit each goal when the one before it has completed (one goal alone at a time, as the Temporal peer's --goals 1 --reps N)",
    },
    warmup: {
      type: "string",
      value: "N",
      help: "goals run to completion first and not measured, as the Temporal peer's --warmup (default 0, or BENCH_WARMUP)",
    },
  },
  notes: "BENCH_KEEP_TOPICS=1 keeps the run's topics.",
});

function options(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseCommandArgs(FLOW_BENCH_COMMAND, args);
  const whole = (flag: "goals" | "tasks" | "timeout-ms" | "warmup", name: string, fallback: number, least = 1) =>
    wholeNumber(flag, values[flag] ?? (env[name] || String(fallback)), least);
  const [goals, tasks] = [whole("goals", "BENCH_GOALS", 100), whole("tasks", "BENCH_TASKS", 10)];
  const timeoutMs = whole("timeout-ms", "BENCH_TIMEOUT_MS", 300_000);
  const rate = values.rate === undefined ? null : Number(values.rate);
  if (rate !== null && !(rate > 0 && Number.isFinite(rate)))
    throw new CliExit(2, `--rate ${values.rate}: give goals per second, a number above 0`);
  const oneByOne = values["one-by-one"] === true;
  if (oneByOne && rate !== null) throw new CliExit(2, "--one-by-one and --rate: give one of them, not both");
  const warmup = whole("warmup", "BENCH_WARMUP", 0, 0);
  return { goals, tasks, timeoutMs, rate, oneByOne, warmup, keepTopics: env.BENCH_KEEP_TOPICS === "1" };
}

/** Workers with room for every task at once, so that the bench times the hierarchy, not a queue. */
export function benchTopology(capacity: number, meanDurationMs = 0): TopologyConfig {
  const domains = Object.fromEntries(
    Object.entries(DOMAINS).map(([domain, [mayors, specs]]) => {
      const workers = Object.entries(specs).map(([spec, count]) => [spec, { count, capacity }]);
      return [domain, { mayors, workers: Object.fromEntries(workers) }];
    }),
  );
  return { simulated: { seed: 7, meanDurationMs, failureRate: 0 }, topologies: { aamas: { domains } } };
}

/**
 * M tasks in layers of 3, one per domain: each depends on its domain's task one layer up, the first
 * of a layer also on the last of the layer before, so that work keeps crossing domains and tiers.
 */
export function taskGraph(m: number): TaskSpec[] {
  const none = { description: null, phase: null, estimatedEffortMs: null, priority: null, inputs: {}, timeoutMs: null };
  const domains = Object.entries(DOMAINS).map(([domain, [, specs]]) => ({ domain, specs: Object.keys(specs) }));
  return Array.from({ length: m }, (_, i) => {
    const { domain, specs } = domains[i % domains.length]!;
    const dependsOn = (i < 3 ? [] : i % 3 === 0 ? [i - 3, i - 1] : [i - 3]).map((d) => `t${d}`);
    const specialization = specs[Math.floor(i / 3) % specs.length]!;
    return { ...none, id: `t${i}`, title: `bench task ${i}`, domain, specialization, dependsOn };
  });
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
export const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;

/** Whether the machine or this process was the limit: a low rate on a busy machine says little. */
export function cpuWindow() {
  const idle = () => sum(os.cpus().map((c) => c.times.idle));
  const all = () => sum(os.cpus().flatMap((c) => Object.values(c.times)));
  const [idle0, all0, p0, t0] = [idle(), all(), process.cpuUsage(), performance.now()];
  const elu0 = performance.eventLoopUtilization();
  return () => {
    const p = process.cpuUsage(p0);
    return {
      machineBusy: r3(1 - (idle() - idle0) / Math.max(1, all() - all0)),
      processCpuCores: r3((p.user + p.system) / 1000 / (performance.now() - t0)),
      eventLoopUtilization: r3(performance.eventLoopUtilization(elu0).utilization),
    };
  };
}

/** Polls; the instants that are measured are taken where they happen, so polling costs no accuracy. */
export async function waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Counts the requests of every transactional producer by owner (tier or baseline round) and API.
 * The hosts build their producers from the client they are given, so a subclass sees them all.
 */
class CountingKafka extends PolityKafka {
  readonly requests = new Map<string, Map<string, number>>();
  constructor(brokers: string[]) {
    super(brokers, "polity-bench-flow");
  }
  override producer(config?: ProducerConfig): Producer {
    const producer = super.producer(config);
    // Hosts: `<prefix>polity-<tier>-p<partition>`; baseline rounds: `<prefix><round>`.
    const owner = /^bench-\d+\.(?:polity-)?(.+?)(?:-p\d+)?$/.exec(config?.transactionalId ?? "")?.[1];
    if (owner !== undefined) {
      producer.on(producer.events.REQUEST, ({ payload: { apiName } }) => {
        const byApi = this.requests.get(owner) ?? new Map<string, number>();
        this.requests.set(owner, byApi.set(apiName, (byApi.get(apiName) ?? 0) + 1));
      });
    }
    return producer;
  }
  counts(owner: string): Record<string, number> {
    return Object.fromEntries(this.requests.get(owner) ?? []);
  }
}

export async function withAdmin<T>(kafka: Kafka, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Decodes every type of the flow once, as a process that has run a while has done. */
export async function warmCodec(codec: Codec): Promise<void> {
  const topics = TOPICS.filter((t) => t.name === "polity.goals.commands" || EVENT_TOPICS.includes(t.name));
  for (const type of topics.flatMap((t) => t.messages)) {
    const id = await codec.schemaId(type);
    await codec.decode(codec.encodeWithId(type, id, sampleValue(codec.typeOf(type))));
  }
}

async function runFlow(kafka: CountingKafka, codec: Codec, prefix: string, opts: ReturnType<typeof options>, say: Say) {
  const log = (line: string) => {
    if (/fail|error|could not/i.test(line)) say(`hierarchy: ${line}`);
  };
  const topology = benchTopology(opts.goals * opts.tasks);
  const hierarchy = await startHierarchy({ kafka, codec, topology, topicPrefix: prefix, log });
  const [seen, completed, sentAt] = [[] as Seen[], new Map<string, Seen>(), new Map<string, number>()];
  let [tasksDone, joined, failure] = [0, false, ""];
  // Warm-up goals (--warmup) are read but kept out of every figure; so is anything read while they run.
  const [warmDone, warmPrefix] = [new Set<string>(), "bench-warmup-"];
  let [warming, readAll] = [false, 0];
  let end: { at: number; events: number; tasks: number } | undefined;
  const reader = kafka.consumer({ groupId: `${prefix}bench-reader`, readUncommitted: false, maxWaitTimeInMs: 100 });
  let writer: EventWriter | undefined;
  let progress: NodeJS.Timeout | undefined;
  try {
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    // Submitting before every partition is live would time the restore too.
    // Every host on every partition of its inputs (3 for the policy engine and the scaler, 6 elsewhere).
    const live = () => hierarchy.hosts.every((h) => h.livePartitions >= slotsOf(h.role as Role));
    await waitFor(live, 60_000, "the tiers to restore");
    say(`flow: ${hierarchy.hosts.length} tiers live on every partition of their inputs`);
    reader.on(reader.events.GROUP_JOIN, () => (joined = true));
    await reader.connect();
    await reader.subscribe({ topics: EVENT_TOPICS.map((t) => physicalTopic(t, prefix)), fromBeginning: true });
    await reader.run({
      autoCommit: false,
      // Keys and headers tell all the reader needs; decoding would take CPU from the tiers.
      eachBatch: async ({ batch }) => {
        for (const { key, value, headers = {}, timestamp } of batch.messages) {
          const [type, goalId] = [String(headers[HEADER.type]), String(key)];
          readAll++;
          if (goalId.startsWith(warmPrefix)) {
            if (type === "GoalCompleted") warmDone.add(goalId);
            else if (type === "GoalFailed" || type === "GoalRejected") failure ||= `${type} for ${goalId}`;
            continue;
          }
          if (warming) continue;
          const [readAt, producedAt] = [Date.now(), Number(timestamp)];
          const s: Seen = { type, goalId, readAt, producedAt, raw: { key, value, headers } };
          seen.push(s);
          if (type === "TaskCompleted") tasksDone++;
          else if (type === "GoalFailed" || type === "GoalRejected") failure ||= `${type} for ${goalId}`;
          else if (type === "GoalCompleted" && completed.set(goalId, s).size === opts.goals) {
            end ??= { at: performance.now(), events: seen.length, tasks: tasksDone };
          }
        }
      },
    });
    await waitFor(() => joined, 30_000, "the reader to join its group");
    await warmCodec(codec);
    const tasks = taskGraph(opts.tasks);
    const submit = (goalId: string, title: string) =>
      submitGoal(
        writer!,
        { tenantId: "bench", userId: "bench" },
        { goalId, kind: "GOAL", title, topology: "aamas", tasks },
      );
    // Only what goes to the topics the reader reads (not the workers' heartbeats, for instance).
    const onRead = new Set<string>(TOPICS.filter((t) => EVENT_TOPICS.includes(t.name)).flatMap((t) => t.messages));
    const written = (h: (typeof hierarchy.hosts)[number]) => [...h.written].filter(([type]) => onRead.has(type));
    const decisions = () => sum(hierarchy.hosts.flatMap((h) => written(h).map(([, count]) => count)));
    if (opts.warmup > 0) {
      warming = true;
      say(`flow: ${opts.warmup} warm-up goal(s) first, not measured`);
      for (let i = 0; i < opts.warmup; i++) await submit(`${warmPrefix}${i}`, `warm-up ${i}`);
      await waitFor(() => warmDone.size === opts.warmup || failure !== "", opts.timeoutMs, "the warm-up goals");
      if (failure) throw new Error(failure);
      await waitFor(() => readAll >= decisions(), 10_000, "the warm-up's last events").catch(() => undefined);
      warming = false;
    }
    // The tier table counts the measured goals only.
    const before = new Map(hierarchy.hosts.map((h) => [h, { stats: { ...h.stats }, written: new Map(h.written) }]));
    kafka.requests.clear();
    const cpu = cpuWindow();
    const t0 = performance.now();
    const pace = opts.rate ? `, ${opts.rate} goals/s` : opts.oneByOne ? ", one at a time" : " at once";
    say(`flow: submitting ${opts.goals} goals x ${opts.tasks} tasks (DAG depth ${Math.ceil(opts.tasks / 3)})${pace}`);
    progress = setInterval(() => {
      const [s, goals, all] = [((performance.now() - t0) / 1000).toFixed(1), completed.size, opts.goals * opts.tasks];
      say(`flow ${s}s: ${goals}/${opts.goals} goals completed, ${tasksDone}/${all} tasks, ${seen.length} events`);
    }, 2_000);
    for (let i = 0; i < opts.goals; i++) {
      // Paced: goal i goes at t0 + i / rate (an open loop: a slow platform does not slow the load).
      const due = opts.rate ? t0 + (i * 1000) / opts.rate - performance.now() : 0;
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      if (opts.oneByOne && i > 0) {
        const previous = `bench-goal-${i - 1}`;
        await waitFor(() => completed.has(previous) || failure !== "", opts.timeoutMs, `${previous} to complete`);
        if (failure) break;
      }
      const goalId = `bench-goal-${i}`;
      sentAt.set(goalId, Date.now());
      await submit(goalId, `bench goal ${i}`);
    }
    await waitFor(() => end !== undefined || failure !== "", opts.timeoutMs, `${opts.goals} GoalCompleted`);
    if (failure) throw new Error(failure);
    const [cpuFigures, window, windowMs] = [cpu(), end!, end!.at - t0];
    say(`flow: ${opts.goals} goals completed in ${(windowMs / 1000).toFixed(2)} s; letting the last events settle`);
    // Reports may follow the last GoalCompleted; the tier table should count what the reader saw.
    await waitFor(() => readAll >= decisions(), 10_000, "the last events").catch(() => undefined);

    const latencies = (at: (s: Seen) => number) =>
      [...completed.values()].map((s) => at(s) - sentAt.get(s.goalId)!).sort((a, b) => a - b);
    const [produced, observed] = [latencies((s) => s.producedAt), latencies((s) => s.readAt)];
    const tiers = hierarchy.hosts.map((h) => {
      const base = before.get(h)!;
      const stats = Object.fromEntries(
        Object.entries(h.stats).map(([k, v]) => [k, v - base.stats[k as keyof typeof h.stats]]),
      ) as typeof h.stats;
      const written = [...h.written].map(([type, n]) => [type, n - (base.written.get(type) ?? 0)] as const);
      return {
        tier: h.role,
        ...stats,
        written: Object.fromEntries(written.filter(([, n]) => n > 0)),
        requests: kafka.counts(h.role),
      };
    });
    const result = {
      windowMs: r1(windowMs),
      events: window.events,
      tasksCompleted: window.tasks,
      tasksPerSecond: r1(window.tasks / (windowMs / 1000)),
      eventsPerSecond: r1(window.events / (windowMs / 1000)),
      // From SubmitGoal sent to GoalCompleted produced by the president, and to the reader seeing it.
      goalLatencyMs: { p50: percentile(produced, 0.5), p99: percentile(produced, 0.99), max: produced.at(-1) },
      goalLatencyObservedMs: { p50: percentile(observed, 0.5), p99: percentile(observed, 0.99) },
      tiers,
      cpu: cpuFigures,
    };
    return { result, raw: seen.slice(0, window.events).map((s) => s.raw) };
  } finally {
    clearInterval(progress);
    await reader.disconnect().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy.stop();
  }
}

/** As TierHost.commit does: kafkajs itself does not retry CONCURRENT_TRANSACTIONS on AddOffsetsToTxn. */
async function transactionWithRetry(producer: Producer, work: (tx: Transaction) => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const tx = await producer.transaction();
    try {
      await work(tx);
      await tx.commit();
      return;
    } catch (e) {
      await tx.abort().catch(() => undefined);
      if (attempt >= 8 || !((e as { retriable?: boolean }).retriable || /concurrent/i.test(String(e)))) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

async function baselineRound(kafka: CountingKafka, prefix: string, label: string, messages: Raw[], v: VariantKey) {
  const [input, output, groupId] = [`${prefix}${label}.in`, `${prefix}${label}.out`, `${prefix}${label}`];
  const topics = [input, output].map((topic) => ({ topic, numPartitions: PARTITIONS }));
  await withAdmin(kafka, (admin) => admin.createTopics({ waitForLeaders: true, topics }));
  const filler = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await filler.connect();
  for (let i = 0; i < messages.length; i += 500) {
    await filler.send({ topic: input, messages: messages.slice(i, i + 500) });
  }
  await filler.disconnect();
  const retry = VARIANTS[v].retry ?? undefined;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: groupId, retry });
  const consumer = kafka.consumer({ groupId, ...HOST_CONSUMER });
  let [moved, transactions] = [0, 0];
  let [joinedAt, doneAt]: (number | undefined)[] = [];
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (joinedAt === undefined) kafka.requests.delete(label);
    joinedAt ??= performance.now();
  });
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
        const copies = batch.messages.map(({ key, value, headers }) => ({ key, value, headers }));
        const partitions = [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }];
        await transactionWithRetry(producer, async (tx) => {
          await tx.send({ topic: output, messages: copies });
          await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: batch.topic, partitions }] });
        });
        [moved, transactions] = [moved + batch.messages.length, transactions + 1];
        resolveOffset(last);
        await heartbeat();
        if (moved >= messages.length) doneAt ??= performance.now();
      },
    });
    await waitFor(() => doneAt !== undefined, 120_000, `${label} to move ${messages.length} events`);
    const elapsedMs = doneAt! - joinedAt!;
    const [eventsPerSecond, requests] = [r1(messages.length / (elapsedMs / 1000)), kafka.counts(label)];
    const eventsPerTransaction = r1(messages.length / Math.max(1, transactions));
    return { label, elapsedMs: r1(elapsedMs), eventsPerSecond, transactions, eventsPerTransaction, requests };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
}

export async function runFlowBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await flowBench(urls, args)).code;
}

export type FlowResult = Awaited<ReturnType<typeof flowBench>>["result"];

/**
 * The flow bench: prints its tables and returns its result; writes bench/results/flow-<at>.json
 * unless `write` is false (`npm run bench` keeps every result in its own file).
 */
export async function flowBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const opts = options(args);
  const started = performance.now();
  const say: Say = (line) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
  const at = new Date().toISOString();
  const prefix = `bench-${at.replace(/[-:.TZ]/g, "").slice(0, 17)}.`;
  const kafka = new CountingKafka(urls.kafkaBrokers);
  const loadBefore = os.loadavg().map(r1);
  say(`topic prefix ${prefix}; ${opts.goals} goals x ${opts.tasks} tasks; ${os.cpus().length} cpus`);

  let run: Awaited<ReturnType<typeof runFlow>>;
  const rounds: Record<VariantKey, Awaited<ReturnType<typeof baselineRound>>[]> = { defaultRetry: [], hostRetry: [] };
  try {
    run = await runFlow(kafka, Codec.forUrl(urls.schemaRegistryUrl), prefix, opts, say);
    // The variants take turns, so that a noisy neighbour slows both alike.
    for (let r = 1; r <= BASELINE_ROUNDS; r++) {
      for (const v of ["defaultRetry", "hostRetry"] as const) {
        say(`baseline ${v}, round ${r}/${BASELINE_ROUNDS}: moving ${run.raw.length} events`);
        rounds[v].push(await baselineRound(kafka, prefix, `${v}-${r}`, run.raw, v));
      }
    }
  } finally {
    if (!opts.keepTopics) {
      await withAdmin(kafka, async (admin) => {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
        if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
        const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
        if (groups.length > 0) await admin.deleteGroups(groups);
      }).catch((e: Error) => say(`could not delete the bench topics and groups: ${e.message}`));
    }
  }

  const flow = run.result;
  const baseline = (v: VariantKey) => {
    const median = [...rounds[v]].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond)[rounds[v].length >> 1]!;
    const ratio = r3(flow.eventsPerSecond / median.eventsPerSecond);
    return { ...VARIANTS[v], eventsPerSecond: median.eventsPerSecond, ratio, median, rounds: rounds[v] };
  };
  const [defaultRetry, hostRetry] = [baseline("defaultRetry"), baseline("hostRetry")];
  const result = {
    at,
    command: `npm run bench:flow${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
    N: opts.goals,
    rate: opts.rate,
    oneByOne: opts.oneByOne,
    warmupGoals: opts.warmup,
    M: opts.tasks,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: process.platform },
    loadAverage: { before: loadBefore, after: os.loadavg().map(r1) },
    topicPrefix: prefix,
    notes:
      `Baseline: the flow's ${flow.events} events (same bytes, keys, headers) moved between fresh ${PARTITIONS}-partition topics by one consumer group (the hosts' consumer settings, one partition at a time) ` +
      "and one transactional producer, one transaction per fetched batch with sendOffsets, retried on CONCURRENT_TRANSACTIONS like the hosts; clock from group join to last commit; " +
      `median of ${BASELINE_ROUNDS} rounds per variant, interleaved. defaultRetry: kafkajs's default producer retry; hostRetry (like for like, the headline ratio): producers/writer.ts's.`,
    flow,
    baselines: { defaultRetry, hostRetry },
    ratio: hostRetry.ratio,
    ratioToDefaultRetryBaseline: defaultRetry.ratio,
    target: 0.5,
  };

  const n = (x: number) => Math.round(x).toLocaleString("en");
  const row = (...cells: unknown[]) => `| ${cells.join(" | ")} |`;
  const out = [
    row("measure", "value"),
    row("---", "---"),
    row("goals x tasks (DAG depth)", `${opts.goals} x ${opts.tasks} (${Math.ceil(opts.tasks / 3)})`),
    row("flow: first submit to last GoalCompleted", `${(flow.windowMs / 1000).toFixed(2)} s`),
    row("flow: tasks/s", flow.tasksPerSecond),
    row(`flow: events/s (${flow.events} events)`, n(flow.eventsPerSecond)),
    row("flow: goal latency p50 / p99", `${n(flow.goalLatencyMs.p50)} / ${n(flow.goalLatencyMs.p99)} ms`),
  ];
  for (const b of [defaultRetry, hostRetry]) {
    const what = `baseline, ${b.label}: events/s (median of ${b.rounds.map((r) => n(r.eventsPerSecond)).join(", ")}`;
    out.push(row(`${what}; ~${b.median.eventsPerTransaction} events/tx)`, n(b.eventsPerSecond)));
  }
  out.push(
    row(`ratio flow / baseline, ${defaultRetry.label}`, defaultRetry.ratio.toFixed(3)),
    row(`**ratio flow / baseline, ${hostRetry.label} (target >= 0.5)**`, `**${hostRetry.ratio.toFixed(3)}**`),
    "",
    // A try the broker turned away (CONCURRENT_TRANSACTIONS, mostly) costs more than one request of a kind.
    `| tier | inputs | events written | transactions | events/tx | inputs/tx | requests/tx: ${TX_APIS.join(", ")}, all | written by type |`,
    row(...Array<string>(8).fill("---")),
  );
  const perTx = (requests: Record<string, number>, tx: number) => {
    const counts = [...TX_APIS.map((api) => requests[api] ?? 0), sum(Object.values(requests))];
    return counts.map((c) => (c / Math.max(1, tx)).toFixed(2)).join(", ");
  };
  const per = (a: number, b: number) => r1(a / Math.max(1, b));
  for (const t of flow.tiers) {
    const { inputs: i, decisions: d, transactions: x } = t;
    const counts = [i, d, x, per(d, x), per(i, x)];
    const byType = Object.entries(t.written).map(([type, count]) => `${type} ${count}`);
    out.push(row(t.tier, ...counts, perTx(t.requests, t.transactions), byType.join(", ")));
  }
  for (const { median: m } of [defaultRetry, hostRetry]) {
    const counts = [run.raw.length, run.raw.length, m.transactions, m.eventsPerTransaction, m.eventsPerTransaction];
    out.push(row(`baseline ${m.label}`, ...counts, perTx(m.requests, m.transactions), "-"));
  }
  const { machineBusy: busy, processCpuCores: cores, eventLoopUtilization: loop } = flow.cpu;
  const machine = `machine ${Math.round(busy * 100)}% busy (${os.cpus().length} cpus)`;
  out.push("", `flow CPU: ${machine}, this process ${cores} cores, event loop ${Math.round(loop * 100)}% utilized`);
  for (const line of out) console.log(line);

  if (write) {
    const file = path.join(repoRoot, "bench/results", `flow-${at.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, file)}`);
  }
  return { code: 0, result };
}
