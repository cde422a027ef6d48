/**
 * `npm run bench:codec`: the registry codec next to avsc's raw toBuffer/fromBuffer, and the event
 * writer next to a bare kafkajs producer sending the same bytes, measured in the same run on the
 * same broker. Each figure is the median of several rounds; ratios are what to read (the machines
 * are shared and noisy). Results go to stdout and bench/results/codec-<timestamp>.json.
 * `-- --rounds R --ops N --messages M` (defaults 5, 50000, 20000) size it.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { repoRoot, type InfraUrls } from "../lib/config.js";
import { defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import { kafkaClient } from "../lib/kafka.js";
import { ensureTopics, registerSchemas } from "../producers/admin.js";
import { CHAIN_HEADER } from "../producers/chain.js";
import { buildEnvelope, buildHeaders } from "../producers/envelope.js";
import { EventWriter, type OutgoingMessage } from "../producers/writer.js";
import { Codec } from "../schemas/codec.js";
import { sampleValue } from "../test/support/samples.js";

const BATCH = 500;
const TYPE = "TaskCompleted";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Rate {
  median: number;
  min: number;
  max: number;
}

const summary = (rates: number[]): Rate => ({
  median: median(rates),
  min: Math.min(...rates),
  max: Math.max(...rates),
});

/** ops/s of `body` over several rounds. */
async function rate(rounds: number, ops: number, body: () => void | Promise<void>): Promise<Rate> {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await body();
    rates.push(ops / ((performance.now() - t0) / 1000));
  }
  return summary(rates);
}

export const CODEC_BENCH_COMMAND = defineCommand({
  name: "bench codec",
  summary: "codec and writer throughput next to raw avsc and a bare kafkajs producer",
  options: {
    rounds: { type: "string", value: "R", default: "5", help: "rounds per figure" },
    ops: { type: "string", value: "N", default: "50000", help: "encodes/decodes per round" },
    messages: {
      type: "string",
      value: "M",
      default: "20000",
      help: "messages sent per round (rounded up to whole batches)",
    },
  },
});

function options(args: string[]) {
  const { values } = parseCommandArgs(CODEC_BENCH_COMMAND, args);
  return {
    rounds: wholeNumber("rounds", values.rounds),
    ops: wholeNumber("ops", values.ops),
    messages: wholeNumber("messages", values.messages),
  };
}

export async function runCodecBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await codecBench(urls, args)).code;
}

export type CodecResult = Awaited<ReturnType<typeof codecBench>>["result"];

/** Prints the table and returns the result; writes bench/results/codec-<at>.json unless `write` is false. */
export async function codecBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const { rounds: ROUNDS, ops: CODEC_OPS, messages: asked } = options(args);
  const PRODUCE_MESSAGES = Math.ceil(asked / BATCH) * BATCH;
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench", true);
  await ensureTopics(kafka);
  await registerSchemas(codec);
  const type = codec.typeOf(TYPE);
  const { envelope: _e, ...payload } = sampleValue(type) as Record<string, unknown>;
  const context: OutgoingMessage["context"] = {
    tenantId: "bench",
    correlationId: "goal-bench",
    actor: { id: "worker-1", tier: "WORKER" },
    aggregate: { type: "TASK", id: "task-1", version: 3 },
  };
  const value = sampleValue(type);
  const id = await codec.schemaId(TYPE);
  const wire = codec.encodeWithId(TYPE, id, value);
  const body = type.toBuffer(value);
  await codec.decode(wire); // warm the schema cache: the steady state is what is measured

  process.stderr.write(`[bench] codec: ${ROUNDS} rounds x ${CODEC_OPS} ops of ${TYPE} (${wire.length} bytes)\n`);
  const rawEncode = await rate(ROUNDS, CODEC_OPS, () => {
    for (let i = 0; i < CODEC_OPS; i++) type.toBuffer(value);
  });
  const codecEncode = await rate(ROUNDS, CODEC_OPS, () => {
    for (let i = 0; i < CODEC_OPS; i++) {
      codec.validate(TYPE, value);
      codec.encodeWithId(TYPE, id, value);
    }
  });
  const rawDecode = await rate(ROUNDS, CODEC_OPS, () => {
    for (let i = 0; i < CODEC_OPS; i++) type.fromBuffer(body);
  });
  const codecDecode = await rate(ROUNDS, CODEC_OPS, async () => {
    for (let i = 0; i < CODEC_OPS; i++) await codec.decode(wire);
  });

  process.stderr.write(`[bench] produce: ${ROUNDS} rounds x ${PRODUCE_MESSAGES} messages in batches of ${BATCH}\n`);
  const writer = await EventWriter.connect(kafka, codec);
  const bare = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await bare.connect();
  const messages = Array.from(
    { length: BATCH },
    () => ({ type: TYPE, context, payload }) as unknown as OutgoingMessage,
  );
  const prepared = Array.from({ length: BATCH }, (_, i) => ({ key: `goal-bench-${i % 16}`, value: wire }));
  // Like for like: the same bytes with the headers every Polity message carries (envelope fields,
  // trace context, hash chain), which kafkajs encodes one by one; the bare figure above has none.
  const hash = "0".repeat(64);
  const headers = {
    ...buildHeaders(buildEnvelope(TYPE, context)),
    [CHAIN_HEADER.aggregate]: "TASK:task-1",
    [CHAIN_HEADER.prev]: hash,
    [CHAIN_HEADER.hash]: hash,
  };
  const preparedWithHeaders = prepared.map((m) => ({ ...m, headers: { ...headers } }));
  const writerRates: number[] = [];
  const bareRates: number[] = [];
  const headedRates: number[] = [];
  // Interleave the two so drift on a shared machine hits both alike.
  for (let r = 0; r < ROUNDS; r++) {
    let t0 = performance.now();
    for (let sent = 0; sent < PRODUCE_MESSAGES; sent += BATCH) await writer.send(messages);
    writerRates.push(PRODUCE_MESSAGES / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let sent = 0; sent < PRODUCE_MESSAGES; sent += BATCH) {
      await bare.send({ topic: "polity.tasks.events", messages: prepared });
    }
    bareRates.push(PRODUCE_MESSAGES / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let sent = 0; sent < PRODUCE_MESSAGES; sent += BATCH) {
      await bare.send({ topic: "polity.tasks.events", messages: preparedWithHeaders });
    }
    headedRates.push(PRODUCE_MESSAGES / ((performance.now() - t0) / 1000));
  }
  await writer.disconnect();
  await bare.disconnect();
  const writerRate = summary(writerRates);
  const bareRate = summary(bareRates);
  const headedRate = summary(headedRates);

  const rows = [
    ["encode (validate + wire format)", codecEncode, "avsc toBuffer", rawEncode],
    ["decode (wire format, resolver)", codecDecode, "avsc fromBuffer", rawDecode],
    ["EventWriter.send", writerRate, "bare kafkajs producer, same bytes", bareRate],
    [
      "EventWriter.send (beside the same bytes and headers)",
      writerRate,
      "bare kafkajs producer, same bytes and the same 9 headers",
      headedRate,
    ],
  ] as const;
  const result = {
    at: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${(await import("node:os")).cpus().length} cpus`,
    rounds: ROUNDS,
    messageType: TYPE,
    wireBytes: wire.length,
    rows: rows.map(([name, ours, baseName, base]) => ({
      name,
      ours,
      baseline: baseName,
      base,
      ratio: ours.median / base.median,
    })),
  };
  console.log("| measure | ops/s (median, min-max) | baseline | ops/s (median, min-max) | ratio |");
  console.log("| --- | --- | --- | --- | --- |");
  const fmt = (x: Rate) =>
    `${Math.round(x.median).toLocaleString("en")} (${Math.round(x.min).toLocaleString("en")}-${Math.round(x.max).toLocaleString("en")})`;
  for (const r of result.rows)
    console.log(`| ${r.name} | ${fmt(r.ours)} | ${r.baseline} | ${fmt(r.base)} | ${r.ratio.toFixed(2)} |`);
  if (write) {
    const dir = path.join(repoRoot, "bench/results");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `codec-${result.at.replace(/[:.]/g, "-")}.json`);
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, file)}`);
  }
  return { code: 0, result };
}
