/**
 * Read-committed consumers must never see a record of an aborted transaction, however the aborted
 * transactions of several producers interleave in one partition.
 *
 * A broker restart aborts the open transactions of every processor at once, so their records sit
 * side by side in a partition. The fetch response lists aborted transactions in the order their
 * abort markers were written, not by first offset, and a fetch may start in the middle of one.
 * kafkajs 2.2.4's filter (consumer/filterAbortedMessages.js) assumed the list sorted and entered at
 * most one aborted transaction per record, so such records reached read-committed consumers: the
 * fault suite saw a projection hold an aborted TaskAccepted and a task completed twice after a
 * Kafka restart. patches/kafkajs+2.2.4.patch fixes the filter (applied by `npm ci`); these tests pin
 * it on the real broker, and lib/kafka-read-committed.ts makes every process check it at start.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Kafka, Producer } from "kafkajs";
import { createTopic, kafka, unique } from "../support/infra.js";
import { assertReadCommittedFilter } from "../../lib/kafka-read-committed.js";

/** Every value a read-committed consumer of `topic` reads from `offset` until it has seen `lastValue`. */
async function readCommitted(k: Kafka, topic: string, offset: string, lastValue: string): Promise<string[]> {
  const consumer = k.consumer({ groupId: unique("abort-read"), readUncommitted: false, maxWaitTimeInMs: 100 });
  const seen: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let seek = true;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (seek) consumer.seek({ topic, partition: 0, offset });
      seek = false;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${lastValue}" after 20 s; read ${seen.join(", ")}`)),
        20_000,
      );
      void consumer
        .run({
          eachMessage: async ({ message }) => {
            const value = message.value!.toString();
            seen.push(value);
            if (value === lastValue) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe("read-committed consumers and interleaved aborted transactions", () => {
  const k = kafka("polity-abort-test");
  const topic = unique("contract-aborts");
  const producers: Producer[] = [];
  /** Offsets of the first record of each producer's transaction. */
  const firsts: string[] = [];

  before(async () => {
    await createTopic(k, topic, 1);
    for (let i = 0; i < 3; i++) {
      const p = k.producer({ transactionalId: unique(`abort-${i}`), idempotent: true, maxInFlightRequests: 1 });
      await p.connect();
      producers.push(p);
    }
    const [a, b, c] = producers as [Producer, Producer, Producer];
    const ta = await a.transaction();
    const tb = await b.transaction();
    // a and b interleave: a1 b1 a2 b2 a3 b3, then b aborts before a does, so the broker lists b's
    // transaction (which starts later) before a's.
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
  });

  after(async () => {
    for (const p of producers) await p.disconnect().catch(() => undefined);
  });

  test("the installed kafkajs carries the fix (the check every Kafka client runs at start)", () => {
    assert.doesNotThrow(() => assertReadCommittedFilter());
  });

  test("from the start of the partition, only the committed record is read", async () => {
    assert.deepEqual(await readCommitted(k, topic, "0", "committed"), ["committed"]);
  });

  test("from inside both aborted transactions (a fetch that starts mid-way), only the committed record is read", async () => {
    // Offset 3 is b2's: both transactions began before it.
    assert.deepEqual(firsts, ["0", "1"]);
    assert.deepEqual(await readCommitted(k, topic, "3", "committed"), ["committed"]);
  });
});
