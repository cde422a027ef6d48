/**
 * docs/asyncapi.json is a valid AsyncAPI document: @asyncapi/parser, with the Avro schema parser
 * registered, reports no error; every catalog topic is a channel with its Kafka binding and its
 * send and receive operations, and every message type is there with an Avro payload that is
 * self-contained and is exactly the schema registered for it.
 *
 * The parser does not ask a schema parser to validate the schemas of an AsyncAPI 3 document (only
 * their shape is checked against the spec's Avro JSON schema), so the payloads are also given to
 * the Avro schema parser's own validate() and parsed with avsc here.
 *
 * POLITY_ASYNCAPI_FILE=<file> checks another document (e.g. an older one) instead.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, test } from "node:test";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";
import { DiagnosticSeverity, Parser, type ValidateSchemaInput } from "@asyncapi/parser";
import avsc from "avsc";
import { CHAIN_HEADER } from "../../producers/chain.js";
import { HEADER } from "../../producers/envelope.js";
import { LOGICAL_TYPES, loadSchemas, registrySchema } from "../../schemas/avro-types.js";
import { TOPICS } from "../../schemas/catalog.js";
import { ASYNCAPI_FILE } from "../../schemas/codegen.js";

const AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0";
const file = process.env.POLITY_ASYNCAPI_FILE || ASYNCAPI_FILE;
const text = fs.readFileSync(file, "utf8");
const schemas = loadSchemas();
const avroParser = AvroSchemaParser();
const parser = new Parser();
parser.registerSchemaParser(avroParser);

interface Ref {
  $ref: string;
}
interface Doc {
  asyncapi?: string;
  servers?: Record<string, { host?: string; protocol?: string }>;
  channels?: Record<
    string,
    {
      address?: string;
      messages?: Record<string, Ref>;
      bindings?: { kafka?: { topic?: string; partitions?: number } };
    }
  >;
  operations?: Record<string, { action?: string; channel?: Ref; messages?: Ref[]; tags?: unknown[] }>;
  components?: {
    messages?: Record<
      string,
      {
        name?: string;
        headers?: Ref;
        payload?: { schemaFormat?: string; schema?: unknown };
        bindings?: { kafka?: { key?: unknown } };
      }
    >;
    schemas?: Record<string, { properties?: Record<string, unknown> }>;
  };
}
const doc = JSON.parse(text) as Doc;

describe(`AsyncAPI document (${file})`, () => {
  test("@asyncapi/parser with the Avro schema parser reports no error", async () => {
    const { document, diagnostics } = await parser.parse(text, { source: file });
    const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
    const shown = errors
      .slice(0, 8)
      .map((d) => `  ${d.code} at ${d.path.join("/") || "(root)"}: ${d.message}`)
      .join("\n");
    assert.equal(errors.length, 0, `${errors.length} errors, the first ones:\n${shown}`);
    assert.ok(document, "the parser returned no document");
  });

  test("describes the local stack's broker", () => {
    assert.equal(doc.asyncapi, "3.0.0");
    assert.deepEqual(
      Object.values(doc.servers ?? {}).map((s) => [s.host, s.protocol]),
      [["127.0.0.1:19092", "kafka"]],
    );
  });

  test("every catalog topic is a channel with its Kafka binding, and who writes and reads it", () => {
    const channels = Object.entries(doc.channels ?? {});
    assert.equal(channels.length, TOPICS.length, "one channel per catalog topic");
    for (const topic of TOPICS) {
      const found = channels.find(([, c]) => c.address === topic.name);
      assert.ok(found, `no channel has the address ${topic.name}`);
      const [id, channel] = found;
      assert.equal(channel.bindings?.kafka?.topic, topic.name, `${topic.name}: Kafka binding topic`);
      assert.equal(channel.bindings?.kafka?.partitions, topic.partitions, `${topic.name}: partitions`);
      assert.deepEqual(Object.keys(channel.messages ?? {}), [...topic.messages], `${topic.name}: messages`);
      for (const action of ["send", "receive"]) {
        const ops = Object.values(doc.operations ?? {}).filter(
          (o) => o.action === action && o.channel?.$ref === `#/channels/${id}`,
        );
        assert.equal(ops.length, 1, `${topic.name}: one ${action} operation`);
        assert.deepEqual(
          ops[0]!.messages?.map((r) => r.$ref),
          topic.messages.map((m) => `#/channels/${id}/messages/${m}`),
          `${topic.name}: ${action} operation messages`,
        );
        assert.ok((ops[0]!.tags ?? []).length > 0, `${topic.name}: ${action} operation names who`);
      }
    }
  });

  test("every message type has its Avro payload, headers and Kafka key", () => {
    const messages = doc.components?.messages ?? {};
    assert.deepEqual(Object.keys(messages).sort(), [...schemas.messages.keys()].sort());
    for (const [name, message] of Object.entries(messages)) {
      assert.equal(message.name, name);
      assert.equal(message.payload?.schemaFormat, AVRO_FORMAT, `${name}: schemaFormat`);
      assert.ok(message.headers?.$ref, `${name}: headers`);
      assert.ok(message.bindings?.kafka?.key, `${name}: Kafka key`);
    }
    const eventHeaders = Object.keys(doc.components?.schemas?.EventHeaders?.properties ?? {});
    for (const header of [...Object.values(HEADER), ...Object.values(CHAIN_HEADER)])
      assert.ok(eventHeaders.includes(header), `EventHeaders lacks ${header}`);
  });

  test("every payload is valid, self-contained Avro with simple names, and is the registered schema", async () => {
    for (const [name, message] of Object.entries(doc.components?.messages ?? {})) {
      const schema = message.payload?.schema;
      const input = { data: schema, meta: {}, path: ["components", "messages", name, "payload", "schema"] };
      const problems = await avroParser.validate(input as unknown as ValidateSchemaInput);
      assert.deepEqual(problems ?? [], [], `${name}: the Avro schema parser refuses the payload`);
      JSON.stringify(schema, (key, value: unknown) => {
        if (key === "name" && typeof value === "string")
          assert.match(value, /^[A-Za-z_][A-Za-z0-9_]*$/, `${name}: a name is a simple name`);
        return value;
      });
      // A fresh registry: nothing but the payload itself to resolve names from.
      const type = avsc.Type.forSchema(schema as avsc.Schema, { logicalTypes: LOGICAL_TYPES });
      const registered = schemas.messages.get(name);
      assert.ok(registered, `${name} is no message type`);
      assert.equal(registrySchema(type), registrySchema(registered.type), `${name}: not the registered schema`);
    }
  });
});
