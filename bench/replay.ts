/**
 * `npm run bench:replay [-- --goals G --copies K --reps R]` (defaults 20, 50, 3): the audit replay
 * (projections/audit: read with scanLog, decode through the registry, fold with the deciders'
 * `evolve`) next to a bare kafkajs consume of the same topic, measured in the same run.
 *
 * Log: the hierarchy (the tests' topology) runs G goals of the tests' ten-task DAG; their events on
 * the goal-keyed topics are then copied K times into one 6-partition topic, each copy with its goal
 * ids renamed and re-encoded (so the replay folds K×G distinct goals, in each goal's log order).
 * Both readers start a fresh consumer group at offset 0; each is timed from its first batch to the
 * end of the log, so the group join is not counted. Figures are the median of R repetitions with
 * min and max; the ratio is replay / bare (target ≥ 0.8).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";
import { repoRoot, urlsToEnv, type InfraUrls } from "../lib/config.js";
import { defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import { kafkaClient } from "../lib/kafka.js";
import { startHierarchy } from "../processors/hierarchy.js";
import { evolve, initialState } from "../processors/domain/kernel/state.js";
import { ensureTopics } from "../producers/admin.js";
import { submitGoal } from "../producers/commands.js";
import { EventWriter } from "../producers/writer.js";
import { scanLog, type LogRecord } from "../projections/audit/log.js";
import { decodeRecord, GOAL_TOPICS } from "../projections/audit/replay.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";

interface Figures {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

const stats = (runs: number[]): Figures => {
  const sorted = [...runs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted.at(-1)!, runs };
};

export const REPLAY_BENCH_COMMAND = defineCommand({
  name: "bench replay",
  summary: "audit replay (decode + evolve) next to a bare kafkajs consume",
  options: {
    goals: { type: "string", value: "G", default: "20", help: "goals recorded" },
    copies: { type: "string", value: "K", default: "50", help: "renamed copies of their events in the replayed topic" },
    reps: { type: "string", value: "R", default: "3", help: "repetitions behind every median" },
  },
});

const say = (line: string) => console.error(`[bench:replay] ${line}`);

/** Runs G goals through the hierarchy and returns their records on the goal-keyed topics. */
async function recordGoals(kafka: Kafka, codec: Codec, urls: InfraUrls, prefix: string, goals: number) {
  for (const [name, value] of Object.entries(urlsToEnv(urls))) process.env[name] = value;
  const support = await import("../test/support/hierarchy.js");
  const { LogWatcher } = await import("../test/support/watch.js");
  await ensureTopics(kafka, prefix);
  const hierarchy = await startHierarchy({
    kafka,
    codec,
    topology: support.testTopology(),
    topicPrefix: prefix,
    heartbeats: false,
    log: () => undefined,
  });
  const writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
  const watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events"]);
  try {
    say(`log: ${goals} goals x 10 tasks through the hierarchy`);
    const ids: string[] = [];
    for (let i = 0; i < goals; i++) {
      const { goalId } = await submitGoal(
        writer,
        { tenantId: "bench", userId: "bench" },
        { title: `replay bench ${i}`, tasks: support.TEN_TASK_DAG },
      );
      ids.push(goalId);
    }
    for (const id of ids) await watch.final(id, 300_000);
    // Let the last transactions commit.
    await new Promise((r) => setTimeout(r, 2_000));
  } finally {
    await watch.stop();
    await writer.disconnect();
    await hierarchy.stop();
  }
  const records: LogRecord[] = [];
  await scanLog(kafka, {
    topics: GOAL_TOPICS.map((t) => physicalTopic(t, prefix)),
    onBatch: (batch) => void records.push(...batch),
  });
  return records;
}

/** Replaces every string equal to a goal id (or starting with `<goalId>/`) by its copy's id. */
function rename(value: unknown, ids: Map<string, string>): unknown {
  if (typeof value === "string") {
    const exact = ids.get(value);
    if (exact) return exact;
    const slash = value.indexOf("/");
    if (slash > 0 && ids.has(value.slice(0, slash))) return ids.get(value.slice(0, slash)) + value.slice(slash);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => rename(v, ids));
  if (value && typeof value === "object" && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = rename(v, ids);
    return out;
  }
  return value;
}

/** Writes K renamed copies of the records into `topic`, each goal keyed by its new id. */
async function amplify(kafka: Kafka, codec: Codec, records: LogRecord[], topic: string, copies: number) {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  await admin.disconnect();
  const decoded = [];
  for (const r of records) {
    const d = await decodeRecord(codec, r);
    if (d.ok)
      decoded.push({
        record: r,
        type: d.event.event.type,
        value: d.event.event.value,
        schemaId: r.value!.readInt32BE(1),
      });
  }
  const goalIds = [
    ...new Set(decoded.map((d) => (d.value as { envelope: { correlationId: string } }).envelope.correlationId)),
  ];
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let written = 0;
  try {
    for (let k = 0; k < copies; k++) {
      const ids = new Map(goalIds.map((g) => [g, `${g}-c${k}`]));
      const messages = decoded.map((d) => {
        const value = rename(d.value, ids) as { envelope: { correlationId: string } };
        return {
          key: value.envelope.correlationId,
          value: codec.encodeWithId(d.type, d.schemaId, value),
          headers: d.record.headers,
        };
      });
      for (let i = 0; i < messages.length; i += 1000)
        await producer.send({ topic, messages: messages.slice(i, i + 1000) as never });
      written += messages.length;
      if ((k + 1) % 10 === 0 || k + 1 === copies) say(`log: ${k + 1}/${copies} copies, ${written} records`);
    }
  } finally {
    await producer.disconnect();
  }
  return written;
}

/** A bare kafkajs consume of the topic to its end: records/s from the first batch. */
async function bare(kafka: Kafka, topic: string): Promise<{ records: number; perSecond: number }> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
  const groupId = `bench-replay-bare-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxBytes: 16 * 1024 * 1024 });
  const reached = new Map<number, bigint>();
  let records = 0;
  let first = 0;
  let last = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const check = () => {
    if ([...ends].every(([p, end]) => (reached.get(p) ?? 0n) >= end)) resolve();
  };
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (!first) first = performance.now();
      records += batch.messages.length;
      reached.set(batch.partition, BigInt(batch.lastOffset()) + 1n);
      last = performance.now();
      check();
    },
  });
  await done;
  await consumer.disconnect();
  await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect();
  return { records, perSecond: records / ((last - first) / 1000) };
}

/** The audit replay of the topic: scanLog, decode, evolve. Events/s from the first batch. */
async function replayRun(kafka: Kafka, codec: Codec, topic: string) {
  let state = initialState({ keepEnded: Infinity });
  let events = 0;
  let first = 0;
  let last = 0;
  let decodeMs = 0;
  let evolveMs = 0;
  await scanLog(kafka, {
    topics: [topic],
    onBatch: async (records) => {
      if (!first) first = performance.now();
      for (const r of records) {
        const t0 = performance.now();
        const d = await decodeRecord(codec, r);
        const t1 = performance.now();
        decodeMs += t1 - t0;
        if (!d.ok) continue;
        state = evolve(state, d.event.event);
        evolveMs += performance.now() - t1;
        events++;
      }
      last = performance.now();
    },
  });
  const ms = last - first;
  return { events, perSecond: events / (ms / 1000), goals: state.goals.size, ms, decodeMs, evolveMs };
}

export async function runReplayBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await replayBench(urls, args)).code;
}

export type ReplayResult = Awaited<ReturnType<typeof replayBench>>["result"];

/** Prints the summary and returns the result; writes bench/results/replay-<at>.json unless `write` is false. */
export async function replayBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const { values } = parseCommandArgs(REPLAY_BENCH_COMMAND, args);
  const goals = wholeNumber("goals", values.goals);
  const copies = wholeNumber("copies", values.copies);
  const reps = wholeNumber("reps", values.reps);
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench-replay", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const prefix = `bench-replay-${randomUUID().slice(0, 8)}.`;
  const topic = `${prefix}replay-source`;
  try {
    const records = await recordGoals(kafka, codec, urls, prefix, goals);
    const total = await amplify(kafka, codec, records, topic, copies);
    say(`log ready: ${total} records (${records.length} x ${copies})`);
    const bareRuns: number[] = [];
    const replayRuns: number[] = [];
    const ratios: number[] = [];
    for (let r = 1; r <= reps; r++) {
      const b = await bare(kafka, topic);
      const p = await replayRun(kafka, codec, topic);
      if (b.records !== total || p.events !== total)
        throw new Error(`rep ${r}: bare read ${b.records}, replay ${p.events} of ${total} records`);
      bareRuns.push(Math.round(b.perSecond));
      replayRuns.push(Math.round(p.perSecond));
      ratios.push(Number((p.perSecond / b.perSecond).toFixed(3)));
      say(
        `rep ${r}/${reps}: bare ${Math.round(b.perSecond)} records/s, replay ${Math.round(p.perSecond)} events/s (${p.goals} goals folded; of ${Math.round(p.ms)} ms, decode ${Math.round(p.decodeMs)}, evolve ${Math.round(p.evolveMs)}), ratio ${ratios.at(-1)}`,
      );
    }
    const result = {
      bench: "replay",
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model ?? "?",
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      log: { goals, copies, records: total },
      bare: stats(bareRuns),
      replay: stats(replayRuns),
      ratio: stats(ratios),
      target: 0.8,
    };
    console.log(
      `replay: ${result.replay.median} events/s (min ${result.replay.min}, max ${result.replay.max}); ` +
        `bare consume: ${result.bare.median} records/s (min ${result.bare.min}, max ${result.bare.max}); ` +
        `ratio ${result.ratio.median} (min ${result.ratio.min}, max ${result.ratio.max}; target ≥ 0.8)`,
    );
    if (write) {
      const dir = path.join(repoRoot, "bench", "results");
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `replay-${result.at.replace(/[:.]/g, "-")}.json`);
      fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
      console.log(path.relative(repoRoot, file));
    }
    return { code: 0, result };
  } finally {
    const support = await import("../test/support/hierarchy.js");
    await support.removePrefix(kafka, prefix).catch(() => undefined);
  }
}
