// The contract without a broker: every catalog type has exactly one schema with docs, invalid
// payloads are refused naming the field, logical types round-trip, generated files are current.
import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, test } from "node:test";
import { loadSchemas } from "../../schemas/avro-types.js";
import { MESSAGE_TYPES, TOPICS } from "../../schemas/catalog.js";
import { Codec, ValidationError } from "../../schemas/codec.js";
import { ASYNCAPI_FILE, GENERATED_TYPES, generateAsyncApi, generateTypes } from "../../schemas/codegen.js";
import { RegistryClient } from "../../schemas/registry-client.js";
import { sampleValue } from "../support/samples.js";

const schemas = loadSchemas();
// No registry call is made below: validate() and the generators are local.
const codec = new Codec(new RegistryClient("http://127.0.0.1:9/unused"), schemas);

describe("schemas", () => {
  test("every message type of the catalog has a schema, and every message schema is in the catalog", () => {
    const withSchema = [...schemas.messages.keys()].sort();
    assert.deepEqual(withSchema, [...MESSAGE_TYPES].sort());
    assert.ok(MESSAGE_TYPES.length >= 50, `catalog has ${MESSAGE_TYPES.length} types`);
  });

  const designFile = new URL("../../../shared/DESIGN.md", import.meta.url);
  const noDesign = fs.existsSync(designFile) ? false : "../shared/DESIGN.md is not beside this checkout";
  test("the catalog names every type DESIGN.md lists", { skip: noDesign }, () => {
    const design = fs.readFileSync(designFile, "utf8");
    const catalog = design.slice(design.indexOf("Catalog (at least)"), design.indexOf("Dead letters carry"));
    const names = [...catalog.matchAll(/\b([A-Z][a-zA-Z]+)\b/g)].map((m) => m[1]!).filter((n) => n !== "Catalog");
    assert.ok(names.length > 40);
    for (const name of names)
      assert.ok(MESSAGE_TYPES.includes(name as never), `${name} missing from schemas/catalog.ts`);
  });

  test("every record and field carries a doc", () => {
    const missing: string[] = [];
    const visit = (schema: unknown, where: string) => {
      if (Array.isArray(schema)) return schema.forEach((s) => visit(s, where));
      if (typeof schema !== "object" || schema === null) return;
      const s = schema as {
        type?: unknown;
        name?: string;
        doc?: string;
        fields?: { name: string; doc?: string; type: unknown }[];
        items?: unknown;
        values?: unknown;
      };
      if ((s.type === "record" || s.type === "enum") && !s.doc) missing.push(`${where}: ${s.name} has no doc`);
      for (const f of s.fields ?? []) {
        if (!f.doc) missing.push(`${where}.${f.name} has no doc`);
        visit(f.type, `${where}.${f.name}`);
      }
      visit(s.items, where);
      visit(s.values, where);
    };
    for (const [name, entry] of schemas.messages) visit(entry.type.schema({ exportAttrs: true }), name);
    assert.deepEqual(missing, []);
  });

  test("every message but DeadLetter starts with the shared envelope", () => {
    for (const [name, entry] of schemas.messages) {
      if (name === "DeadLetter") continue;
      const first = (entry.type as unknown as { fields: { name: string; type: { name?: string } }[] }).fields[0];
      assert.equal(first?.name, "envelope", `${name}: first field`);
      assert.equal(first?.type.name, "dev.polity.common.Envelope", `${name}: envelope type`);
    }
  });

  test("a sample of every type is valid and round-trips through Avro binary", () => {
    for (const [name, entry] of schemas.messages) {
      const value = sampleValue(entry.type);
      codec.validate(name, value);
      const back = entry.type.fromBuffer(entry.type.toBuffer(value));
      assert.ok(entry.type.toBuffer(back).equals(entry.type.toBuffer(value)), `${name} changed in a round trip`);
    }
  });

  test("an invalid payload is refused with the message type, the field and the problem", () => {
    const value = sampleValue(codec.typeOf("SubmitGoal")) as Record<string, unknown>;
    (value.envelope as Record<string, unknown>).occurredAt = "yesterday";
    value.priority = "high";
    delete value.title;
    assert.throws(
      () => codec.validate("SubmitGoal", value),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.equal(e.messageType, "SubmitGoal");
        const paths = e.problems.map((p) => p.path);
        assert.deepEqual(paths.sort(), ["envelope.occurredAt", "priority", "title"].sort());
        assert.match(e.message, /field priority: expected int, got string "high"/);
        assert.match(e.message, /field title: expected string, got missing/);
        return true;
      },
    );
  });

  test("the topic catalog keys, partitions and retains every topic", () => {
    for (const t of TOPICS) {
      assert.ok(t.partitions >= 3, `${t.name}: partitions allow several processor instances`);
      assert.equal(t.retentionMs, -1, `${t.name}: the log is kept`);
    }
  });

  test("generated TypeScript types and the AsyncAPI document are current (run npm run schemas:gen)", () => {
    assert.equal(fs.readFileSync(GENERATED_TYPES, "utf8"), generateTypes(schemas));
    assert.equal(fs.readFileSync(ASYNCAPI_FILE, "utf8"), generateAsyncApi(schemas));
  });
});
