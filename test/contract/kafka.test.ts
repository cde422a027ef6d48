// The event contract on the real broker and registry: the admin step, a round trip of every
// catalog type, refusal before sending, dead letters, transactions, and an independent reader.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import kafkajs from "kafkajs";
import { COMPATIBILITY, ensureTopics, registerSchemas } from "../../producers/admin.js";
import { EventWriter, TRANSACTIONAL_RETRY, type LogPosition } from "../../producers/writer.js";
import { DEAD_LETTER_TOPIC, MESSAGE_TYPES, physicalTopic, TOPICS } from "../../schemas/catalog.js";
import { Codec, ValidationError } from "../../schemas/codec.js";
import { EventReader, type DeadLetter, type ReadEvent } from "../../schemas/reader.js";
import { registrySchema, parseWriterSchema } from "../../schemas/avro-types.js";
import { createTopic, kafka, unique, urls } from "../support/infra.js";
import { eventually } from "../support/eventually.js";
import { sampleMessage } from "../support/messages.js";
import { removePrefix } from "../support/hierarchy.js";

const k = kafka("polity-contract-test");
const codec = Codec.forUrl(urls.schemaRegistryUrl);
// Own topics under a prefix: the samples must not land in the default deployment's log.
const P = `${unique("t-contract")}.`;
const T = (name: string) => physicalTopic(name, P);
const EVENT_TOPICS = TOPICS.map((t) => t.name)
  .filter((t) => t !== DEAD_LETTER_TOPIC)
  .map(T);
const tenantOf = (e: ReadEvent) => (e.value.envelope as { tenantId: string } | undefined)?.tenantId;

/** Starts a reader with a fresh group and resolves once `done` holds for what it collected. */
async function collect(
  topics: string[],
  done: (events: ReadEvent[], letters: DeadLetter[]) => boolean,
  keep: (e: ReadEvent) => boolean,
  timeoutMs = 30_000,
) {
  const events: ReadEvent[] = [];
  const letters: DeadLetter[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const reader = await EventReader.start({
    kafka: k,
    codec,
    groupId: unique("contract-reader"),
    topics,
    topicPrefix: P,
    handle: async (e) => {
      if (keep(e)) events.push(e);
      if (done(events, letters)) finish();
    },
    onDeadLetter: (l) => {
      letters.push(l);
      if (done(events, letters)) finish();
    },
  });
  const timer = setTimeout(finish, timeoutMs);
  await finished;
  clearTimeout(timer);
  await reader.stop();
  return { events, letters };
}

describe("event contract on Kafka and the registry", () => {
  let writer: EventWriter;

  before(async () => {
    await ensureTopics(k, P);
    await registerSchemas(codec);
    writer = await EventWriter.connect(k, codec, { topicPrefix: P });
  });
  after(async () => {
    await writer.disconnect();
    await removePrefix(k, P);
  });

  test("the admin step is idempotent: topics exist with their config, every subject has its compatibility level", async () => {
    assert.deepEqual(await ensureTopics(k, P), [], "a second run creates no topic");
    const again = await registerSchemas(Codec.forUrl(urls.schemaRegistryUrl));
    assert.equal(again.length, MESSAGE_TYPES.length);
    const first = await registerSchemas(codec);
    assert.deepEqual(again, first, "registering again returns the same ids");
    for (const { subject } of again.slice(0, 5))
      assert.equal(await codec.registry.compatibility(subject), COMPATIBILITY);
    const admin = k.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: EVENT_TOPICS });
    for (const t of meta.topics) {
      assert.equal(t.partitions.length, TOPICS.find((c) => T(c.name) === t.name)!.partitions, `${t.name} partitions`);
    }
    await admin.disconnect();
  });

  test("every catalog type round-trips through the writer, the broker and the reader", async () => {
    const tenant = unique("tenant");
    const types = MESSAGE_TYPES.filter((t) => t !== "DeadLetter");
    const outgoing = types.map((t) => sampleMessage(codec, t, tenant));
    const sent = await writer.send(outgoing);
    assert.equal(sent.length, types.length);
    const { events } = await collect(
      EVENT_TOPICS,
      (ev) => ev.length >= types.length,
      (e) => tenantOf(e) === tenant,
    );
    assert.deepEqual(events.map((e) => e.type).sort(), [...types].sort());
    for (const e of events) {
      const s = sent.find((x) => x.envelope.eventId === (e.value.envelope as { eventId: string }).eventId);
      assert.ok(s, `${e.type}: read an event that was not sent`);
      assert.equal(e.topic, s.topic);
      assert.equal(e.key?.toString(), s.key);
      assert.equal(e.headers["polity-type"]?.toString(), e.type);
      // Compare in Avro binary: the decoded value is a record class instance, the sent one a plain object.
      const type = codec.typeOf(e.type);
      const original = { envelope: s.envelope, ...outgoing[sent.indexOf(s)]!.payload };
      assert.ok(type.toBuffer(e.value).equals(type.toBuffer(original)), `${e.type}: value changed on the way`);
      assert.equal(e.schemaId, await codec.schemaId(e.type));
    }
  });

  test("an invalid message is refused before anything of its batch is sent", async () => {
    const tenant = unique("tenant");
    const good = sampleMessage(codec, "GoalSubmitted", tenant);
    const bad = sampleMessage(codec, "SubmitGoal", tenant, { priority: "urgent" });
    await assert.rejects(writer.send([good, bad]), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.match(
        e.message,
        /^SubmitGoal is not valid against its schema: field priority: expected int, got string "urgent"/,
      );
      return true;
    });
    const marker = sampleMessage(codec, "GoalSubmitted", tenant);
    const [sentMarker] = await writer.send([marker]);
    const { events } = await collect(
      [T("polity.goals.events"), T("polity.goals.commands")],
      (ev) => ev.some((e) => (e.value.envelope as { eventId: string }).eventId === sentMarker!.envelope.eventId),
      (e) => tenantOf(e) === tenant,
    );
    assert.equal(events.length, 1, "only the marker sent afterwards is in the log");
  });

  test("poison messages go to the dead-letter topic with their bytes and reason; good messages after them are processed", async () => {
    const tenant = unique("tenant");
    const tag = randomBytes(8);
    const stranger = await codec.registry.register(
      unique("polity.goals.events-dev.polity.test.Stranger"),
      JSON.stringify({
        type: "record",
        name: "Stranger",
        namespace: "dev.polity.test",
        fields: [{ name: "tag", type: "bytes" }],
      }),
    );
    const strangerBody = parseWriterSchema(
      JSON.stringify({
        type: "record",
        name: "Stranger",
        namespace: "dev.polity.test",
        fields: [{ name: "tag", type: "bytes" }],
      }),
    ).toBuffer({ tag });
    const valid = codec.encodeWithId("GoalSubmitted", await codec.schemaId("GoalSubmitted"), {
      envelope: {
        eventId: "9a5a5c1e-55d7-4c1b-9a3e-4d2f7a1b2c3d",
        type: "GoalSubmitted",
        occurredAt: new Date(),
        tenantId: tenant,
        correlationId: "x",
        causationId: null,
        actor: { id: "u", tier: "USER" },
        aggregate: { type: "GOAL", id: "x", version: 1 },
      },
      ...(sampleMessage(codec, "GoalSubmitted", tenant).payload as object),
    });
    const header = (id: number) =>
      Buffer.from([
        0,
        ...Buffer.alloc(4)
          .fill(0)
          .map((_, i) => (id >>> (8 * (3 - i))) & 0xff),
      ]);
    const poison: [string, Buffer][] = [
      ["UNDECODABLE", Buffer.concat([Buffer.from("plain text, not Avro "), tag])],
      ["UNKNOWN_SCHEMA_ID", Buffer.concat([header(2_000_000_000), tag])],
      ["UNKNOWN_TYPE", Buffer.concat([header(stranger), strangerBody])],
      ["UNDECODABLE", Buffer.concat([valid.subarray(0, 12), tag.subarray(0, 1)])],
    ];
    const producer = k.producer();
    await producer.connect();
    await producer.send({
      topic: T("polity.goals.events"),
      messages: poison.map(([, value]) => ({ key: tenant, value })),
    });
    await producer.disconnect();
    const [good] = await writer.send([sampleMessage(codec, "GoalSubmitted", tenant)]);

    const isOurs = (l: DeadLetter) => poison.some(([, v]) => l.originalValue?.equals(v));
    const { events, letters } = await collect(
      [T("polity.goals.events")],
      (ev, ls) => ev.length >= 1 && ls.filter(isOurs).length >= poison.length,
      (e) => tenantOf(e) === tenant,
    );
    assert.equal(events.length, 1);
    assert.equal((events[0]!.value.envelope as { eventId: string }).eventId, good!.envelope.eventId);
    // The reader's dead letters are at least once (a consumer restart before its offsets are
    // committed reads a message again); one per original offset is the contract.
    const byOffset = new Map(letters.filter(isOurs).map((l) => [l.originalOffset, l]));
    const ours = [...byOffset.values()].sort((a, b) => Number(BigInt(a.originalOffset) - BigInt(b.originalOffset)));
    assert.deepEqual(
      ours.map((l) => l.errorKind),
      poison.map(([kind]) => kind),
    );
    for (const l of ours) {
      assert.equal(l.originalTopic, T("polity.goals.events"));
      assert.equal(l.originalKey?.toString(), tenant);
      assert.ok(l.reason.length > 10, `reason: ${l.reason}`);
    }

    // And the letters really are on the dead-letter topic, decodable like any other message.
    const { letters: fromTopic } = await collectDeadLetters(poison.map(([, v]) => v));
    assert.equal(fromTopic.length, poison.length);
  });

  test("an aborted writer transaction is invisible; a committed one carries its consumer offsets and says where it wrote", async () => {
    const tenant = unique("tenant");
    const groupId = unique("tx-group");
    const txWriter = await EventWriter.connect(k, codec, { transactionalId: unique("contract-tx"), topicPrefix: P });
    let written: readonly LogPosition[];
    try {
      await assert.rejects(
        txWriter.transaction(async (tx) => {
          await tx.send([sampleMessage(codec, "GoalSubmitted", tenant, { title: "aborted" })]);
          throw new Error("decider failed");
        }),
        /decider failed/,
      );
      written = await txWriter.transaction(async (tx) => {
        await tx.send([sampleMessage(codec, "GoalSubmitted", tenant, { title: "committed" })]);
        await tx.sendOffsets(groupId, [
          { topic: T("polity.goals.commands"), partitions: [{ partition: 0, offset: "42" }] },
        ]);
        return tx.written;
      });
    } finally {
      await txWriter.disconnect();
    }
    const { events } = await collect(
      [T("polity.goals.events")],
      (ev) => ev.some((e) => e.value.title === "committed"),
      (e) => tenantOf(e) === tenant,
    );
    assert.deepEqual(
      events.map((e) => e.value.title),
      ["committed"],
    );
    // What the restore's floor (processors/engine/floor.ts) is built from: where the record landed.
    assert.deepEqual(written, [
      { topic: T("polity.goals.events"), partition: events[0]!.partition, offset: BigInt(events[0]!.offset) },
    ]);
    const admin = k.admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [T("polity.goals.commands")] });
    await admin.disconnect();
    assert.equal(offsets[0]?.partitions.find((p) => p.partition === 0)?.offset, "42");
  });

  test("opening a transactional writer fences the id's previous owner and ends its open transaction", async () => {
    // What a restore relies on (processors/engine/host.ts): once the slot's writer is open, no
    // transaction of the partition's previous owner is open any more, and that owner cannot commit.
    const transactionalId = unique("fenced-owner");
    const topic = T("polity.goals.events");
    const previous = k.producer({ transactionalId, maxInFlightRequests: 1, idempotent: true });
    await previous.connect();
    const admin = k.admin();
    const hw = k.admin({ readUncommitted: true });
    await Promise.all([admin.connect(), hw.connect()]);
    try {
      const open = await previous.transaction();
      await open.send({ topic, messages: [{ partition: 0, value: "left open" }] });
      const stable = async () => (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === 0)!.high;
      const written = async () => (await hw.fetchTopicOffsets(topic)).find((o) => o.partition === 0)!.high;
      assert.ok(
        BigInt(await stable()) < BigInt(await written()),
        "the open transaction holds the last stable offset back",
      );
      const next = await EventWriter.connect(k, codec, { transactionalId, topicPrefix: P });
      try {
        // Ended (aborted): the last stable offset is past its record and its abort marker.
        assert.equal(await stable(), await written());
        await assert.rejects(open.commit(), "the previous owner is fenced");
      } finally {
        await next.disconnect();
      }
    } finally {
      await Promise.all([previous.disconnect(), admin.disconnect(), hw.disconnect()]);
    }
  });

  test("after its first fetch a consumer is answered only for partitions with something new (fetch sessions)", async () => {
    // Every tier's consumer fetches every partition of three or four topics; without a fetch session
    // (KIP-227; kafkajs had none, the local patch adds it) each answer lists all of them, records or
    // not, and the client parses and books each. With one, an idle answer lists none.
    const topic = unique("fetch-session");
    await createTopic(k, topic, 6);
    const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = k.consumer({ groupId: unique("fetch-session"), maxWaitTimeInMs: 100 });
    const answers: number[] = [];
    consumer.on(consumer.events.REQUEST, ({ payload }) => {
      if (payload.apiName === "Fetch") answers.push(payload.size);
    });
    const seen: string[] = [];
    try {
      await producer.connect();
      await producer.send({ topic, messages: [{ partition: 2, value: "first" }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      // Each batch is first left unresolved, as the engine does with a command topic while it
      // restores: kafkajs fetches from the same offset again, which a session does not name again,
      // so the broker must answer the records again from the offset it has for the session.
      const refused = new Set<string>();
      await consumer.run({
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          const first = `${batch.partition}@${batch.firstOffset()}`;
          if (!refused.has(first)) {
            refused.add(first);
            return;
          }
          for (const message of batch.messages) {
            seen.push(`${batch.partition}:${message.value!.toString()}`);
            resolveOffset(message.offset);
          }
        },
      });
      await eventually(
        "the first record",
        async () => seen.length,
        (n) => n === 1,
      );
      const full = answers[0]!; // the session's first answer: every partition
      answers.length = 0;
      await eventually(
        "five idle fetches",
        async () => answers.length,
        (n) => n >= 5,
      );
      const idle = Math.max(...answers);
      assert.ok(idle * 3 < full, `idle answers of ${answers.join(", ")} bytes against a full one of ${full}`);
      // Records still come, from the partitions they were written to, once each.
      for (const [i, partition] of [0, 3, 0, 5].entries())
        await producer.send({ topic, messages: [{ partition, value: `v${i}` }] });
      await eventually(
        "the four records",
        async () => seen.length,
        (n) => n >= 5,
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual([...seen].sort(), ["0:v0", "0:v2", "2:first", "3:v1", "5:v3"]);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  });

  test("a coordinator no broker names is looked up again, not fatal", () => {
    // While a broker restarts, FindCoordinator can fail on every broker kafkajs asks; kafkajs then
    // threw an error it called not retriable, and a consumer it reached crashed for good (CI: a
    // tier's process ended with exit code 0). The local patch makes it retriable, so the lookup is
    // tried again and, past its retries, kafkajs restarts the consumer. The hosts also replace a
    // consumer kafkajs gives up on (test/integration/follower.test.ts, recovery.test.ts).
    // (kafkajs's types declare no argument; the class takes the message cluster/index.js gives it.)
    const NotFound = kafkajs.KafkaJSGroupCoordinatorNotFound as unknown as new (
      message: string,
    ) => kafkajs.KafkaJSError;
    const e = new NotFound("Failed to find group coordinator");
    assert.equal(e.retriable, true);
  });

  test("a transaction right after a commit retries a busy coordinator without looking anything up again", async () => {
    // The coordinator answers CONCURRENT_TRANSACTIONS while it finishes the transaction before; the
    // local kafkajs patch retries that as is, where kafkajs refreshed its metadata and looked the
    // coordinator up again on every retry (two more requests on a tier's every hop).
    const topic = T("polity.tasks.events");
    const producer = k.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      transactionalId: unique("busy-coordinator"),
      retry: TRANSACTIONAL_RETRY,
    });
    const requests = new Map<string, number>();
    producer.on(producer.events.REQUEST, ({ payload: { apiName } }) =>
      requests.set(apiName, (requests.get(apiName) ?? 0) + 1),
    );
    await producer.connect();
    const [transactions, groupId] = [40, unique("busy-group")];
    try {
      for (let i = 0; i < transactions; i++) {
        if (i === 1) requests.clear(); // the first transaction looks the coordinators up
        const tx = await producer.transaction();
        await tx.send({ topic, messages: [{ key: "busy", value: Buffer.from(`not an event ${i}`) }] });
        await tx.sendOffsets({
          consumerGroupId: groupId,
          topics: [{ topic, partitions: [{ partition: 0, offset: String(i) }] }],
        });
        await tx.commit();
      }
    } finally {
      await producer.disconnect();
    }
    const retries = (requests.get("AddPartitionsToTxn") ?? 0) - (transactions - 1);
    assert.ok(retries > 0, `no transaction met a busy coordinator (requests: ${[...requests]}); nothing was checked`);
    assert.equal(requests.get("Metadata") ?? 0, 0, `metadata refreshed on ${retries} retries`);
    assert.equal(requests.get("GroupCoordinator") ?? 0, 0, `coordinators looked up again on ${retries} retries`);
  });

  test("an independent Confluent deserializer decodes what the writer wrote", async () => {
    const tenant = unique("tenant");
    const [sent] = await writer.send([sampleMessage(codec, "TaskCompleted", tenant)]);
    const consumer = k.consumer({ groupId: unique("independent") });
    const raw: Buffer[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: sent!.topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("independent reader saw nothing")), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (message.headers?.["polity-event-id"]?.toString() === sent!.envelope.eventId && message.value) {
            raw.push(message.value);
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    // @kafkajs/confluent-schema-registry has its own wire-format parser and registry lookup.
    const other = new SchemaRegistry({ host: urls.schemaRegistryUrl });
    const decoded = (await other.decode(raw[0]!)) as {
      envelope: { eventId: string; tenantId: string; occurredAt: number };
    };
    assert.equal(decoded.envelope.eventId, sent!.envelope.eventId);
    assert.equal(decoded.envelope.tenantId, tenant);
    assert.equal(decoded.envelope.occurredAt, sent!.envelope.occurredAt.getTime(), "timestamp-millis as a plain long");
    assert.equal(registrySchema(codec.typeOf("TaskCompleted")).length > 0, true);
  });

  test("records come back with their offsets, timestamps and headers, repeated and prototype-named keys included", async () => {
    // The local kafkajs patch decodes a record's offset, timestamp and headers its own way.
    const topic = T("polity.goals.events");
    const producer = k.producer();
    await producer.connect();
    const tag = unique("headers");
    const messages = [0, 1, 2].map((i) => ({
      key: tag,
      value: Buffer.from(`not an event ${i}`),
      timestamp: String(1_765_000_000_000 + i),
      headers: { tag, n: String(i), repeated: ["a", "b", "c"], constructor: "c", hasOwnProperty: "h" },
    }));
    const [meta] = await producer.send({ topic, messages });
    await producer.disconnect();
    const base = BigInt(meta!.baseOffset!);
    const seen: { offset: string; timestamp: string; headers: Record<string, unknown> }[] = [];
    const consumer = k.consumer({ groupId: unique("headers-reader") });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saw ${seen.length} of 3 records in 30 s`)), 30_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (partition !== meta!.partition || message.headers?.tag?.toString() !== tag) return;
          const headers = Object.fromEntries(
            Object.entries(message.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : String(v)]),
          );
          seen.push({ offset: message.offset, timestamp: message.timestamp, headers });
          if (seen.length === 3) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    assert.deepEqual(
      seen,
      messages.map((m, i) => ({
        offset: String(base + BigInt(i)),
        timestamp: m.timestamp,
        headers: { tag, n: String(i), repeated: ["a", "b", "c"], constructor: "c", hasOwnProperty: "h" },
      })),
    );
  });
});

/** Reads the dead-letter topic itself (not the reader's callback) for letters of these originals. */
async function collectDeadLetters(originals: Buffer[]) {
  const consumer = k.consumer({ groupId: unique("dlq-check") });
  const letters: DeadLetter[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: T(DEAD_LETTER_TOPIC), fromBeginning: true });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        const { type, value } = await codec.decode(message.value);
        const letter = value as unknown as DeadLetter;
        if (type === "DeadLetter" && originals.some((o) => letter.originalValue?.equals(o))) letters.push(letter);
        if (letters.length >= originals.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return { letters };
}
