// An Avro record registered in the real registry, produced in the Confluent wire format to the
// real broker, consumed back and decoded.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { createTopic, kafka, readUntil, unique, urls } from "../support/infra.js";

const schema = {
  type: "record",
  name: "SmokeChecked",
  namespace: "dev.polity.smoke",
  fields: [
    { name: "id", type: "string" },
    { name: "count", type: "int" },
    { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
  ],
};

test("an Avro record round-trips through the registry and the broker in the Confluent wire format", async () => {
  const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });
  const topic = unique("smoke-avro");
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
    { subject: `${topic}-value` },
  );
  assert.ok(Number.isInteger(id) && id > 0, `registry returned schema id ${id}`);

  // Without a logical-type hook avsc carries timestamp-millis as a plain long (milliseconds).
  const value = { id: "goal-1", count: 42, at: 1_700_000_000_000 };
  const encoded = await registry.encode(id, value);
  // Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the Avro body.
  assert.equal(encoded[0], 0);
  assert.equal(encoded.readInt32BE(1), id);

  const k = kafka();
  await createTopic(k, topic);
  const producer = k.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ key: "goal-1", value: encoded }] });
  await producer.disconnect();

  const [message] = await readUntil(k.consumer({ groupId: unique("smoke-avro") }), topic, (seen) => seen.length >= 1);
  assert.ok(message?.value, "no message value read back");
  assert.equal(message.value.readInt32BE(1), id);
  const decoded = (await registry.decode(message.value)) as typeof value;
  assert.deepEqual({ ...decoded }, value); // avsc returns a record class instance: compare fields

  // The registry hands the same schema back by id (what a reader in another language does).
  const fetched = await registry.getSchema(id);
  assert.equal((fetched as unknown as { name: string }).name, "dev.polity.smoke.SmokeChecked");
});
