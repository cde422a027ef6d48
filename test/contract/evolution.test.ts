// Schema evolution on the real registry: a compatible v2 (new optional field) registers and old
// data still decodes with the new reader; an incompatible change is refused by the local check,
// naming the field, and by the registry itself.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import avsc from "avsc";
import { COMPATIBILITY } from "../../producers/admin.js";
import { LOGICAL_TYPES, loadSchemas, registrySchema } from "../../schemas/avro-types.js";
import { Codec } from "../../schemas/codec.js";
import { backwardProblems } from "../../schemas/compatibility.js";
import { RegistryClient, RegistryError } from "../../schemas/registry-client.js";
import { checkSchemas } from "../../schemas/tools.js";
import { unique, urls } from "../support/infra.js";

const registry = new RegistryClient(urls.schemaRegistryUrl);
const parse = (schema: object) => avsc.Type.forSchema(schema as avsc.Schema, { logicalTypes: LOGICAL_TYPES });

const fields = [
  { name: "goalId", type: "string", doc: "goal" },
  { name: "cost", type: { type: "bytes", logicalType: "decimal", precision: 18, scale: 4 }, doc: "cost" },
];
const record = (extra: object[]) => ({
  type: "record",
  name: "Evolving",
  namespace: "dev.polity.test",
  doc: "a test record",
  fields: [...fields, ...extra],
});
const v1 = parse(record([]));
const v2 = parse(record([{ name: "note", type: ["null", "string"], default: null, doc: "added in v2" }]));
const v3 = parse(record([{ name: "owner", type: "string", doc: "added without a default" }]));

describe("schema evolution", () => {
  test("a compatible v2 registers, and data written with v1 decodes with the v2 reader", async () => {
    const subject = unique("polity.test-dev.polity.test.Evolving");
    const id1 = await registry.register(subject, registrySchema(v1));
    await registry.setCompatibility(subject, COMPATIBILITY);
    const old = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), v1.toBuffer({ goalId: "g-1", cost: "12.5000" })]);
    old.writeInt32BE(id1, 1);

    assert.deepEqual(backwardProblems(v2, v1), []);
    assert.equal((await registry.isCompatible(subject, registrySchema(v2))).compatible, true);
    const id2 = await registry.register(subject, registrySchema(v2));
    assert.notEqual(id2, id1);

    // A reader whose local schema is v2 decodes the v1 message through schema resolution.
    const base = loadSchemas();
    const codec = new Codec(registry, {
      registry: base.registry,
      messages: new Map([["Evolving", { file: "test", type: v2, fullName: "dev.polity.test.Evolving" }]]),
    });
    const decoded = await codec.decode(old);
    assert.equal(decoded.type, "Evolving");
    assert.equal(decoded.schemaId, id1);
    assert.deepEqual({ ...decoded.value }, { goalId: "g-1", cost: "12.5000", note: null });
  });

  test("an incompatible change is refused by the local check naming the field, and by the registry", async () => {
    const problems = backwardProblems(v3, v1);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.field, "owner");
    assert.match(problems[0]!.problem, /added without a default/);

    const subject = unique("polity.test-dev.polity.test.Evolving");
    await registry.register(subject, registrySchema(v1));
    await registry.setCompatibility(subject, COMPATIBILITY);
    assert.equal((await registry.isCompatible(subject, registrySchema(v3))).compatible, false);
    await assert.rejects(registry.register(subject, registrySchema(v3)), (e: unknown) => {
      assert.ok(e instanceof RegistryError, String(e));
      assert.equal(e.status, 409);
      return true;
    });
  });

  test("a type change is named with the old and new types", () => {
    const changed = parse({ ...record([]), fields: [{ name: "goalId", type: "int", doc: "now a number" }, fields[1]] });
    const [problem] = backwardProblems(changed, v1);
    assert.equal(problem?.field, "goalId");
    assert.match(problem!.problem, /type changed from "string" to "int"/);
  });

  test("schemas:check passes on the working schemas and names the field of an incompatible edit", async () => {
    const working = loadSchemas();
    const codec = new Codec(registry, working);
    for (const type of working.messages.keys()) await codec.schemaId(type); // as the admin step does
    const clean = await checkSchemas(codec);
    assert.deepEqual(
      clean.filter((r) => r.status === "incompatible"),
      [],
    );

    // Edit SubmitGoal in memory: a new field without a default.
    const submitGoal = working.messages.get("SubmitGoal")!;
    const schema = submitGoal.type.schema({ exportAttrs: true }) as { fields: object[] };
    schema.fields.push({ name: "sponsor", type: "string", doc: "who pays" });
    const edited = avsc.Type.forSchema(schema as avsc.Schema, { logicalTypes: LOGICAL_TYPES });
    const editedSchemas = {
      registry: working.registry,
      messages: new Map([["SubmitGoal", { ...submitGoal, type: edited }]]),
    };
    const [result] = await checkSchemas(new Codec(registry, editedSchemas));
    assert.equal(result?.status, "incompatible");
    assert.match(result!.problems.join("\n"), /SubmitGoal\.sponsor: added without a default/);
  });
});
