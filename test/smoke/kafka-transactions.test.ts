// A transaction that aborts leaves nothing visible to a read_committed consumer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createTopic, kafka, readUntil, unique } from "../support/infra.js";

test("an aborted Kafka transaction is invisible to read_committed and a committed one is visible", async () => {
  const k = kafka();
  const topic = unique("smoke-tx");
  await createTopic(k, topic);
  const producer = k.producer({ transactionalId: unique("smoke-tx"), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const aborted = await producer.transaction();
    await aborted.send({
      topic,
      messages: [
        { key: "k", value: "aborted-1" },
        { key: "k", value: "aborted-2" },
      ],
    });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ key: "k", value: "committed" }] });
    await committed.commit();
  } finally {
    await producer.disconnect();
  }

  const committedReader = k.consumer({ groupId: unique("smoke-rc"), readUncommitted: false });
  const seen = await readUntil(committedReader, topic, (s) => s.some((m) => m.value?.toString() === "committed"));
  assert.deepEqual(
    seen.map((m) => m.value?.toString()),
    ["committed"],
  );

  // The aborted records did reach the log: a read_uncommitted reader sees them, so the check
  // above is about isolation, not about records that were never written.
  const uncommittedReader = k.consumer({ groupId: unique("smoke-ru"), readUncommitted: true });
  const raw = await readUntil(uncommittedReader, topic, (s) => s.some((m) => m.value?.toString() === "committed"));
  assert.deepEqual(
    raw.map((m) => m.value?.toString()),
    ["aborted-1", "aborted-2", "committed"],
  );
});
