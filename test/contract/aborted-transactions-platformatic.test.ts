/**
 * test/contract/aborted-transactions.test.ts, ported to @platformatic/kafka's consumer (an
 * evaluation beside kafkajs: bench/kafka-clients.ts, .polity/notes/platformatic-report.md).
 * A read-committed consumer must never see a record of an aborted transaction.
 *
 * The records are written by kafkajs producers, exactly as in the kafkajs test, and read by a
 * platformatic Consumer (isolationLevel READ_COMMITTED) from a given offset. Besides the kafkajs
 * shape (two producers' aborted transactions interleaved, listed by the broker out of first-offset
 * order, a fetch starting inside both), two shapes that a transactional processor produces and that
 * @platformatic/kafka 2.12.1's filter (Consumer#filterUncommittedMessages) let through:
 *   - one producer aborting twice (a retry after an abort, as TierHost.commit and transactionWithRetry
 *     do): the filter keeps one aborted range per producer id, the last listed, so the records of
 *     the producer's earlier aborted transaction in the same fetch were delivered;
 *   - a fetch response that ends inside an aborted transaction (a catch-up read cut by maxBytes):
 *     the filter only drops a range whose abort marker is in the same response and kept the
 *     others "for safety", so every record before the cut was delivered.
 * patches/@platformatic+kafka+2.12.1.patch replaces the filter with the Java consumer's algorithm;
 * these tests pin it on the real broker.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Consumer, FetchIsolationLevels, MessagesStreamModes } from "@platformatic/kafka";
import type { Producer } from "kafkajs";
import { createTopic, kafka, unique, urls } from "../support/infra.js";

/**
 * Every value a platformatic read-committed consumer of partition 0 of `topic` reads from `offset`
 * until it has seen `lastValue`; `maxBytes` caps each fetch response (the broker still returns at
 * least one record batch).
 */
async function readCommitted(topic: string, offset: string, lastValue: string, maxBytes?: number): Promise<string[]> {
  const consumer = new Consumer({
    groupId: unique("abort-read-plt"),
    clientId: "polity-abort-test-plt",
    bootstrapBrokers: urls.kafkaBrokers,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    maxWaitTime: 100,
    ...(maxBytes !== undefined ? { maxBytes, maxBytesPerPartition: maxBytes } : {}),
  });
  const seen: string[] = [];
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.MANUAL,
      offsets: [{ topic, partition: 0, offset: BigInt(offset) }],
      autocommit: false,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${lastValue}" after 20 s; read ${seen.join(", ")}`)),
        20_000,
      );
      stream.on("error", reject);
      stream.on("data", (message) => {
        const value = message.value!.toString();
        seen.push(value);
        if (value === lastValue) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return seen;
}

describe("@platformatic/kafka read-committed consumers and aborted transactions", () => {
  const k = kafka("polity-abort-test-plt");
  const producers: Producer[] = [];
  const producer = async (name: string) => {
    const p = k.producer({ transactionalId: unique(`abort-plt-${name}`), idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    producers.push(p);
    return p;
  };
  const topics = { interleaved: unique("contract-aborts-plt"), twice: unique("contract-aborts-plt-twice") };
  const cut = unique("contract-aborts-plt-cut");
  /** Offsets of the first record of each producer's transaction, in the interleaved topic. */
  const firsts: string[] = [];

  before(async () => {
    for (const topic of [topics.interleaved, topics.twice, cut]) await createTopic(k, topic, 1);

    // As in the kafkajs test: a and b interleave (a1 b1 a2 b2 a3 b3), b aborts before a does, so
    // the broker lists b's transaction (which starts later) before a's; then c commits.
    const [a, b, c] = [await producer("a"), await producer("b"), await producer("c")];
    const [ta, tb] = [await a.transaction(), await b.transaction()];
    const topic = topics.interleaved;
    for (let i = 1; i <= 3; i++) {
      const [ra] = await ta.send({ topic, messages: [{ value: `aborted-a${i}` }] });
      if (i === 1) firsts.push(ra!.baseOffset!);
      const [rb] = await tb.send({ topic, messages: [{ value: `aborted-b${i}` }] });
      if (i === 1) firsts.push(rb!.baseOffset!);
    }
    await tb.abort();
    await ta.abort();
    const tc = await c.transaction();
    await tc.send({ topic, messages: [{ value: "committed" }] });
    await tc.commit();

    // One producer aborts, retries, aborts again, then commits: offsets 0 (try 1), 1 (its abort
    // marker), 2 (try 2), 3 (marker), 4 (committed), 5 (commit marker).
    const d = await producer("d");
    for (const value of ["aborted-try1", "aborted-try2", "committed"]) {
      const t = await d.transaction();
      await t.send({ topic: topics.twice, messages: [{ value }] });
      await (value === "committed" ? t.commit() : t.abort());
    }

    // One aborted transaction of three ~1 KB record batches (offsets 0, 1, 2; abort marker at 3),
    // then a committed record (4; marker 5).
    const [e, f] = [await producer("e"), await producer("f")];
    const te = await e.transaction();
    for (let i = 1; i <= 3; i++) {
      await te.send({ topic: cut, messages: [{ value: `aborted-e${i}-${"x".repeat(1000)}` }] });
    }
    await te.abort();
    const tf = await f.transaction();
    await tf.send({ topic: cut, messages: [{ value: "committed" }] });
    await tf.commit();
  });

  after(async () => {
    for (const p of producers) await p.disconnect().catch(() => undefined);
    const admin = k.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.interleaved, topics.twice, cut] }).catch(() => undefined);
    await admin.disconnect();
  });

  test("the installed @platformatic/kafka carries Polity's fix to its read-committed filter", () => {
    const dist = path.dirname(createRequire(import.meta.url).resolve("@platformatic/kafka"));
    const source = fs.readFileSync(path.join(dist, "clients/consumer/consumer.js"), "utf8");
    const patched = source.includes("Patched for Polity (patches/@platformatic+kafka+2.12.1.patch)");
    assert.ok(patched, "@platformatic/kafka is installed without the patch: run `npm ci` (or `npx patch-package`)");
  });

  test("interleaved aborts, from the start of the partition: only the committed record is read", async () => {
    assert.deepEqual(await readCommitted(topics.interleaved, "0", "committed"), ["committed"]);
  });

  test("interleaved aborts, from inside both aborted transactions: only the committed record is read", async () => {
    // Offset 3 is b2's: both transactions began before it.
    assert.deepEqual(firsts, ["0", "1"]);
    assert.deepEqual(await readCommitted(topics.interleaved, "3", "committed"), ["committed"]);
  });

  test("one producer's two aborted transactions in one fetch: neither is read", async () => {
    // Unpatched 2.12.1 read ["aborted-try1", "committed"]: the range of offset 2 (try 2) replaced
    // that of offset 0 (try 1) in its Map keyed by producer id.
    assert.deepEqual(await readCommitted(topics.twice, "0", "committed"), ["committed"]);
  });

  test("fetch responses that end inside an aborted transaction: none of its records is read", async () => {
    // maxBytes 1024: each response holds one ~1 KB batch, so the abort marker (offset 3) comes in a
    // later response than the records it aborts. Unpatched 2.12.1 read aborted-e1, -e2 and -e3.
    const seen = await readCommitted(cut, "0", "committed", 1024);
    assert.deepEqual(
      seen.map((v) => v.slice(0, 12)),
      ["committed"],
    );
  });
});
