/**
 * The state store's two write shortcuts, each beside what it replaces: an agent's effects folded
 * into one update (plus its removals) per batch instead of one update per event, and new documents
 * inserted whole instead of upserted and then updated. foldEffects is pure; insertNew runs on the
 * real FerretDB of the stack.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Collection } from "mongodb";
import { foldEffects, insertNew } from "../../projections/mongo/state-store.js";
import { unique, urls } from "../support/infra.js";

describe("foldEffects: one document's effects in log order", () => {
  it("sums counters, keeps the last $set and leaves each set member as its last operation left it", () => {
    const { removals, update } = foldEffects([
      { modifiers: { $addToSet: { currentTasks: "g/a" }, $inc: { "performance.tasksCompleted": 1 } } },
      { modifiers: { $addToSet: { currentTasks: "g/b" }, $set: { "r.cpu.unit": "cores" } } },
      { modifiers: { $pull: { currentTasks: "g/a" }, $inc: { "performance.tasksCompleted": 2 } } },
      { modifiers: { $pull: { currentTasks: "g/c" }, $set: { "r.cpu.unit": "millicores" } } },
      { modifiers: { $addToSet: { currentTasks: "g/c" } } },
    ]);
    assert.deepEqual(removals, { currentTasks: ["g/a"] });
    assert.deepEqual(update, {
      $set: { "r.cpu.unit": "millicores" },
      $inc: { "performance.tasksCompleted": 3 },
      $addToSet: { currentTasks: { $each: ["g/b", "g/c"] } },
    });
  });

  it("has no removals and no empty operators when nothing is pulled or added", () => {
    assert.deepEqual(foldEffects([{ modifiers: { $inc: { n: 1 } } }]), {
      removals: null,
      update: { $set: {}, $inc: { n: 1 } },
    });
  });
});

describe("insertNew on FerretDB", () => {
  let client: MongoClient;
  let docs: Collection<{ _id: string; [field: string]: unknown }>;

  before(async () => {
    client = await MongoClient.connect(urls.mongoUrl);
    docs = client.db().collection(unique("insert_new").replace(/-/g, "_"));
  });
  after(async () => {
    await docs.drop().catch(() => undefined);
    await client.close();
  });

  it("inserts the new documents whole and names the ones that were there, leaving those as they were", async () => {
    await docs.insertOne({ _id: "b", owner: "another writer" });
    const existing = await insertNew(docs, [
      { _id: "a", list: [], _pos: { p: 1 } },
      { _id: "b", owner: "this writer" },
      { _id: "c", list: ["x"], _pos: { p: 2 } },
    ]);
    assert.deepEqual(existing, ["b"]);
    assert.deepEqual(await docs.find({}).sort({ _id: 1 }).toArray(), [
      { _id: "a", list: [], _pos: { p: 1 } },
      { _id: "b", owner: "another writer" },
      { _id: "c", list: ["x"], _pos: { p: 2 } },
    ]);
  });
});
