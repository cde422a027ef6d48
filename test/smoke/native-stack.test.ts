// The native stack's promises: stopping one server and running `up` again restarts only that one,
// and what was written before survives. Runs only when the native stack serves every URL.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { MongoClient } from "mongodb";
import pg from "pg";
import { loadConfig } from "../../lib/config.js";
import { runningPid } from "../../infra/native/process.js";
import { stackStatus, stackUp, stackDown, SERVER_NAMES } from "../../infra/native/stack.js";
import { stackPaths, type ServerName } from "../../infra/native/server.js";
import { createTopic, kafka, readUntil, unique, urls } from "../support/infra.js";

const native = process.env.POLITY_NATIVE_STACK === "1";
const config = loadConfig();

function pids(): Record<ServerName, number | null> {
  const out = {} as Record<ServerName, number | null>;
  for (const name of SERVER_NAMES) {
    const { pidFile } = stackPaths(config.native, name);
    // PostgreSQL may live outside the repo (see postgres.ts), so its pid is checked for liveness only.
    out[name] = runningPid(pidFile, name === "postgres" ? "" : config.native.home);
  }
  return out;
}

describe(
  "native stack restart",
  { skip: native ? false : "the native stack does not serve every URL in this run" },
  () => {
    const topic = unique("smoke-survive");
    const subject = `${unique("smoke-survive")}-value`;
    const collection = unique("smoke_survive");
    const table = unique("smoke_survive").replace(/-/g, "_");

    before(async () => {
      const k = kafka();
      await createTopic(k, topic);
      const producer = k.producer();
      await producer.connect();
      await producer.send({ topic, messages: [{ value: "before-restart" }] });
      await producer.disconnect();
      const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });
      await registry.register(
        {
          type: SchemaType.AVRO,
          schema: JSON.stringify({ type: "record", name: "Survivor", fields: [{ name: "a", type: "int" }] }),
        },
        { subject },
      );
      const mongo = new MongoClient(urls.mongoUrl);
      await mongo.connect();
      await mongo
        .db()
        .collection(collection)
        .insertOne({ _id: "kept" } as never);
      await mongo.close();
      const client = new pg.Client({ connectionString: urls.databaseUrl });
      await client.connect();
      await client.query(`create table ${table} (v text)`);
      await client.query(`insert into ${table} values ('kept')`);
      await client.end();
    });

    after(async () => {
      // Leave the stack as the other tests found it, whatever happened above.
      await stackUp(config);
    });

    for (const name of SERVER_NAMES) {
      test(`stopping ${name} and running up again restarts only ${name}`, async () => {
        const before = pids();
        assert.ok(before[name], `${name} should be running before the test`);
        await stackDown(config, [name]);
        const stopped = pids();
        assert.equal(stopped[name], null, `${name} still running after down`);
        const status = await stackStatus(config);
        assert.equal(status.find((s) => s.name === name)?.state, "down");

        await stackUp(config);
        const afterUp = pids();
        assert.ok(afterUp[name] && afterUp[name] !== before[name], `${name} got no new process`);
        for (const other of SERVER_NAMES.filter((n) => n !== name)) {
          assert.equal(afterUp[other], before[other], `${other} was restarted although only ${name} was down`);
        }
      });
    }

    test("data written before the restarts survives in every server", async () => {
      const seen = await readUntil(kafka().consumer({ groupId: unique("smoke-survive") }), topic, (s) => s.length >= 1);
      assert.equal(seen[0]?.value?.toString(), "before-restart");

      const registry = new SchemaRegistry({ host: urls.schemaRegistryUrl });
      const id = await registry.getLatestSchemaId(subject);
      assert.ok(id > 0);

      const mongo = new MongoClient(urls.mongoUrl);
      await mongo.connect();
      assert.deepEqual(await mongo.db().collection(collection).findOne({}), { _id: "kept" });
      await mongo.close();

      const client = new pg.Client({ connectionString: urls.databaseUrl });
      await client.connect();
      const { rows } = await client.query(`select v from ${table}`);
      await client.end();
      assert.deepEqual(rows, [{ v: "kept" }]);
    });
  },
);
