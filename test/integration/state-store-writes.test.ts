/**
 * The state store's write shortcuts, each beside what it replaces: an agent's effects folded into one
 * update (plus its removals) per batch instead of one update per event; new documents inserted whole
 * instead of upserted and then updated; and a goals batch summarising only the goals whose summary
 * inputs it changed instead of every goal it names; and what a store wrote remembered (Written)
 * instead of read back by its next batch. foldEffects, goalSummary, goalSummaryInputs and Written are
 * pure; insertNew runs on the real FerretDB of the stack.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Collection } from "mongodb";
import {
  foldEffects,
  goalSummary,
  goalSummaryInputs,
  insertNew,
  type GoalDoc,
  type TaskDoc,
} from "../../projections/mongo/state-store.js";
import { Written } from "../../projections/mongo/written.js";
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

describe("goalSummaryInputs: what a goals batch can change of a goal's summary", () => {
  const at = new Date("2026-12-01T10:00:00Z");
  const task = (taskId: string, status: TaskDoc["status"], phase: TaskDoc["phase"]) =>
    ({
      goalId: "g",
      taskId,
      status,
      phase,
      attempt: 1,
      cost: "1.5000",
      agentMs: 10,
      attemptUsage: [],
      assignees: {},
    }) as unknown as TaskDoc;
  const tasks = [task("a", "COMPLETED", "INITIATION"), task("b", "RUNNING", "FEASIBILITY")];
  const escalations = [{ status: "OPEN" as const }];
  const usage = (calls: number) => ({ tokensIn: 0, tokensOut: 0, calls, latencyMs: 0 });
  const phase = (p: string, endedAt: Date | null) => ({ phase: p, startedAt: at, endedAt, planner: null });
  type Source = Pick<GoalDoc, "kind" | "status" | "phases" | "planUsage" | "allocations">;
  const goals: Source[] = [];
  for (const kind of ["GOAL", "PROJECT"] as const)
    for (const status of ["SUBMITTED", "RUNNING", "COMPLETED", "FAILED"] as const)
      for (const phases of [[], [phase("INITIATION", null)], [phase("INITIATION", at), phase("FEASIBILITY", null)]])
        for (const calls of [0, 3])
          goals.push({ kind, status, phases, planUsage: usage(calls), allocations: [] } as unknown as Source);

  it("gives two goals the same summary whenever their inputs are the same", () => {
    let same = 0;
    for (const a of goals)
      for (const b of goals) {
        if (goalSummaryInputs(a) !== goalSummaryInputs(b)) continue;
        same++;
        assert.deepEqual(goalSummary(a, tasks, escalations), goalSummary(b, tasks, escalations));
      }
    assert.ok(same > goals.length, "some goals of different status or phases share their inputs");
  });

  it("leaves a goal's status out unless it is a project, and its plans' model calls in", () => {
    const goal = goals.find((g) => g.kind === "GOAL")!;
    assert.equal(
      goalSummaryInputs({ ...goal, status: "COMPLETED" }),
      goalSummaryInputs({ ...goal, status: "RUNNING" }),
    );
    assert.notEqual(
      goalSummaryInputs({ ...goal, planUsage: usage(1) }),
      goalSummaryInputs({ ...goal, planUsage: usage(2) }),
    );
    const project = goals.find((g) => g.kind === "PROJECT")!;
    assert.notEqual(
      goalSummaryInputs({ ...project, status: "FAILED" }),
      goalSummaryInputs({ ...project, status: "RUNNING" }),
    );
  });
});

describe("Written: what a state store remembers of its own writes", () => {
  it("hands out copies, so a fold that changes one and then fails leaves nothing changed", () => {
    const w = new Written(10);
    w.set("tasks|p0", "g/a", { status: "RUNNING", holders: ["w1"] }, 7);
    const first = w.get<{ status: string; holders: string[] }>("tasks|p0", "g/a")!;
    first.doc.status = "COMPLETED";
    first.doc.holders.push("w2");
    assert.deepEqual(w.get("tasks|p0", "g/a"), { doc: { status: "RUNNING", holders: ["w1"] }, pos: 7 });
    assert.equal(w.get("tasks|p1", "g/a"), undefined, "another partition's fold knows nothing of it");
  });

  it("forgets the least recently used past its capacity, and a group is whole only while all of it is held", () => {
    const w = new Written(3);
    w.set("tasks|p0", "g/a", {}, 1, "goalId=g");
    w.set("tasks|p0", "g/b", {}, 2, "goalId=g");
    w.setGroup("tasks|p0", "goalId=g", ["g/a", "g/b"]);
    assert.deepEqual(w.group("tasks|p0", "goalId=g"), ["g/a", "g/b"]);
    w.set("tasks|p0", "g/c", {}, 3, "goalId=g");
    assert.deepEqual(w.group("tasks|p0", "goalId=g"), ["g/a", "g/b", "g/c"], "a member written later joins");
    w.get("tasks|p0", "g/a"); // used: g/b is now the least recently used
    w.set("tasks|p0", "h/a", {}, 4, "goalId=h");
    assert.equal(w.size, 3);
    assert.equal(w.get("tasks|p0", "g/b"), undefined);
    assert.equal(w.group("tasks|p0", "goalId=g"), undefined, "g lost a member: no longer whole");
    w.setGroup("tasks|p0", "goalId=g", ["g/a", "g/b"]);
    assert.equal(w.group("tasks|p0", "goalId=g"), undefined, "not whole while a member is not held");
    w.clear();
    assert.equal(w.size, 0);
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
