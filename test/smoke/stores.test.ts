// A document through the MongoDB-wire store with the official driver; a row through PostgreSQL with pg.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MongoClient } from "mongodb";
import pg from "pg";
import { unique, urls } from "../support/infra.js";

test("a document is written to and read back from the MongoDB-wire store", async () => {
  const client = new MongoClient(urls.mongoUrl);
  await client.connect();
  try {
    const goals = client
      .db()
      .collection<{ _id: string; status: string; tasks: { id: string; done: boolean }[] }>(unique("smoke_goals"));
    const doc = {
      _id: "goal-1",
      status: "running",
      tasks: [
        { id: "t1", done: true },
        { id: "t2", done: false },
      ],
    };
    await goals.insertOne(doc);
    await goals.updateOne({ _id: "goal-1" }, { $set: { status: "completed", "tasks.1.done": true } });
    const read = await goals.findOne({ _id: "goal-1" });
    assert.deepEqual(read, {
      _id: "goal-1",
      status: "completed",
      tasks: [
        { id: "t1", done: true },
        { id: "t2", done: true },
      ],
    });
    await assert.rejects(goals.insertOne(doc), /duplicate key/i, "a second insert with the same _id must be refused");
    await goals.drop();
  } finally {
    await client.close();
  }
});

test("a row goes through PostgreSQL, and a rolled-back transaction leaves nothing", async () => {
  const client = new pg.Client({ connectionString: urls.databaseUrl });
  await client.connect();
  const table = unique("smoke_events").replace(/-/g, "_");
  try {
    await client.query(`create table ${table} (id bigserial primary key, type text not null, payload jsonb not null)`);
    await client.query(`insert into ${table} (type, payload) values ($1, $2)`, ["GoalSubmitted", { priority: 5 }]);
    await client.query("begin");
    await client.query(`insert into ${table} (type, payload) values ($1, $2)`, ["GoalRejected", {}]);
    await client.query("rollback");
    const { rows } = await client.query<{ type: string; priority: number }>(
      `select type, (payload->>'priority')::int as priority from ${table}`,
    );
    assert.deepEqual(rows, [{ type: "GoalSubmitted", priority: 5 }]);
  } finally {
    await client.query(`drop table if exists ${table}`);
    await client.end();
  }
});
