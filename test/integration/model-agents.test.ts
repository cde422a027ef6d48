// Model-backed agents end to end on the real stack and a real inference runtime: node-llama-cpp
// runs a tiny random-weight GGUF written here (its text is meaningless, but grammar-constrained
// answers are always JSON of the schema asked for). A goal without tasks is planned by the model
// (PlanRequested -> PlanProposed, recorded), its tasks are done by model workers whose usage and
// cost are recorded on the task; a restart decides nothing again and calls no model; and an API
// key never reaches an event, a log line or a read model.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { MongoClient, type Db } from "mongodb";
import pg from "pg";
import { writeTinyGguf } from "../../processors/ai/tiny-gguf.js";
import { costOfTokens } from "../../processors/ai/model-executor.js";
import { startHierarchy, type RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { ProjectionHost } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { submitGoal } from "../../producers/commands.js";
import { ensureTopics } from "../../producers/admin.js";
import { EventWriter } from "../../producers/writer.js";
import { kafkaClient } from "../../lib/kafka.js";
import { Codec } from "../../schemas/codec.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { removePrefix } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PRICING = { inputPer1k: "0.0010", outputPer1k: "0.0020" };
const who = { tenantId: "t-models", userId: "tester" };

function aiTopology(modelFile: string): TopologyConfig {
  // Bounded answers: a random-weight model never stops on its own before a string's maxLength.
  const worker = (outputSchema: Record<string, unknown>) => ({
    count: 1,
    capacity: 2,
    executor: "model" as const,
    model: { model: "local", maxTokens: 200, outputSchema },
  });
  return {
    simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
    models: { local: { backend: "embedded", file: modelFile, threads: 1, pricing: PRICING } },
    topologies: {
      aamas: {
        planner: { kind: "model", maxTasks: 4, maxAttempts: 2 },
        domains: {
          backend: {
            mayors: 1,
            workers: {
              api: worker({
                type: "object",
                properties: { result: { type: "string", maxLength: 60 } },
                required: ["result"],
              }),
            },
          },
          testing: {
            mayors: 1,
            workers: {
              "unit-test": worker({
                type: "object",
                properties: { verdict: { enum: ["pass", "fail"] }, notes: { type: "string", maxLength: 60 } },
                required: ["verdict", "notes"],
              }),
            },
          },
        },
      },
    },
  };
}

type Of<T extends PolityEvent["type"]> = Extract<PolityEvent, { type: T }>["value"];

describe("model-backed agents on a real inference runtime", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "polity-models-"));
  const modelFile = path.join(dir, "tiny.gguf");
  const prefix = `t-models-${randomUUID().slice(0, 8)}.`;
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-test-models", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  let hierarchy: RunningHierarchy | undefined;
  let watch: LogWatcher;
  let writer: EventWriter;
  let goalId = "";
  const events = <T extends PolityEvent["type"]>(id: string, type: T): Of<T>[] =>
    watch.of(id).flatMap((e) => (e.type === type ? [e.value as Of<T>] : []));

  before(async () => {
    writeTinyGguf(modelFile);
    await ensureTopics(kafka, prefix);
    hierarchy = await startHierarchy({ kafka, codec, topology: aiTopology(modelFile), topicPrefix: prefix });
    watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events", "polity.tasks.events"]);
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    ({ goalId } = await submitGoal(writer, who, {
      title: "A todo API with tests",
      description: "A REST API for todo items, and unit tests for it",
      domainHints: ["backend", "testing"],
    }));
  });

  after(async () => {
    await watch?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop().catch(() => undefined);
    await removePrefix(kafka, prefix).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a goal without tasks is planned by the model, recorded, and done by model workers", async () => {
    const end = await watch.final(goalId, 120_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));

    const [request] = events(goalId, "PlanRequested");
    assert.equal(request!.attempt, 1);
    assert.equal(request!.model, "local");
    assert.deepEqual(request!.domains, ["backend", "testing"]);
    const [proposed] = events(goalId, "PlanProposed");
    assert.equal(proposed!.accepted, true, JSON.stringify(proposed!.problems));
    assert.equal(proposed!.planner, "model/v1");
    assert.equal(proposed!.usage!.model, "embedded:tiny.gguf");
    assert.ok(proposed!.usage!.tokensIn > 0 && proposed!.usage!.tokensOut > 0);
    assert.match(proposed!.usage!.promptDigest!, /^[0-9a-f]{64}$/);
    assert.match(proposed!.usage!.answerDigest!, /^[0-9a-f]{64}$/);
    const [decomposed] = events(goalId, "GoalDecomposed");
    assert.equal(decomposed!.planner, "model/v1");
    assert.deepEqual(
      decomposed!.tasks.map((t) => t.id),
      proposed!.tasks.map((t) => t.id),
    );
    assert.ok(decomposed!.tasks.length >= 1 && decomposed!.tasks.length <= 4);

    const done = events(goalId, "TaskCompleted");
    assert.equal(done.length, decomposed!.tasks.length);
    for (const t of done) {
      assert.equal(t.usage?.model, "embedded:tiny.gguf", t.taskId);
      assert.ok(t.usage!.tokensIn > 0 && t.usage!.tokensOut > 0, t.taskId);
      assert.equal(t.cost, costOfTokens(t.usage!, PRICING), `${t.taskId}: cost from its tokens`);
      const spec = decomposed!.tasks.find((s) => s.id === t.taskId)!;
      if (spec.domain === "testing")
        assert.ok(["pass", "fail"].includes(t.outputs.verdict!), JSON.stringify(t.outputs));
      else assert.equal(typeof t.outputs.result, "string");
    }
    // A task that depends on another was prompted with its result: its prompt differs from a
    // prompt built without it, so its digest is not the one of the same task alone.
    const started = events(goalId, "TaskStarted");
    assert.ok(started.every((s) => s.executor === "model"));
  });

  test("a restart re-decides nothing and calls no model: the recorded plan and answers stand", async () => {
    await watch.final(goalId, 120_000);
    // The end's transaction also carries the snapshot and the notice: let the log go quiet first.
    let before = -1;
    while (watch.of(goalId).length !== before) {
      before = watch.of(goalId).length;
      await sleep(2_000);
    }
    await hierarchy!.stop();
    // Any model call after the restart would fail on this file, and leave a PlanProposed or
    // TaskFailed with the error in the log.
    fs.writeFileSync(modelFile, "not a model");
    hierarchy = await startHierarchy({ kafka, codec, topology: aiTopology(modelFile), topicPrefix: prefix });
    await sleep(5_000);
    assert.deepEqual(
      watch
        .of(goalId)
        .slice(before)
        .map((e) => e.type),
      [],
    );
    writeTinyGguf(modelFile);
  });
});

describe("an API key never leaves the model backend", () => {
  const KEY = `sk-test-${randomUUID()}`;
  const ENV = "POLITY_TEST_MODEL_KEY";
  const prefix = `t-secret-${randomUUID().slice(0, 8)}.`;
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-test-secret", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const lines: string[] = [];
  const schema = `analytics_secret_${randomUUID().slice(0, 8)}`;
  let server: http.Server;
  let hierarchy: RunningHierarchy | undefined;
  let hosts: ProjectionHost[] = [];
  let watch: LogWatcher;
  let writer: EventWriter;
  let pool: pg.Pool;
  let client: MongoClient;
  let db: Db;
  let requests = 0;

  before(async () => {
    process.env[ENV] = KEY;
    // A provider that refuses the key and quotes it back, as a careless proxy might.
    server = http.createServer((req, res) => {
      requests++;
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `invalid key: ${req.headers.authorization ?? ""}` } }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const topology: TopologyConfig = {
      simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
      models: { hosted: { backend: "openai", baseUrl: `http://127.0.0.1:${port}/v1`, model: "m", apiKeyEnv: ENV } },
      topologies: {
        aamas: {
          retries: { worker: 1, domain: 1 },
          domains: {
            backend: {
              mayors: 1,
              workers: { api: { count: 1, capacity: 1, executor: "model", model: { model: "hosted" } } },
            },
          },
        },
      },
    };
    await ensureTopics(kafka, prefix);
    pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 4 });
    client = new MongoClient(urls.mongoUrl);
    await client.connect();
    db = client.db(`state_secret_${randomUUID().slice(0, 8)}`);
    await migrate(pool, schema);
    await new StateStore(db).ensureIndexes();
    const common = { kafka, codec, topicPrefix: prefix };
    hosts = [
      new ProjectionHost({
        ...common,
        store: new AnalyticsStore(pool, { schema }),
        topics: [...PROJECTED_TOPICS.analytics],
      }),
      new ProjectionHost({ ...common, store: new StateStore(db), topics: [...PROJECTED_TOPICS.state] }),
    ];
    for (const h of hosts) await h.start();
    hierarchy = await startHierarchy({ kafka, codec, topology, topicPrefix: prefix, log: (l) => lines.push(l) });
    watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events", "polity.tasks.events"]);
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
  });

  after(async () => {
    delete process.env[ENV];
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    await watch?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop().catch(() => undefined);
    await removePrefix(kafka, prefix).catch(() => undefined);
    await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool?.end();
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
    server?.close();
  });

  test("a refused key fails the task with the reason, and the key is in no event, log line or read model", async () => {
    const { goalId } = await submitGoal(writer, who, {
      title: "Ask a hosted model",
      tasks: [
        {
          id: "ask",
          title: "Ask",
          description: null,
          domain: "backend",
          specialization: "api",
          phase: null,
          dependsOn: [],
          estimatedEffortMs: null,
          priority: null,
          inputs: {},
          timeoutMs: null,
        },
      ],
    });
    const end = await watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalFailed", JSON.stringify(end.value));
    assert.ok(requests >= 1, "the provider was asked");
    const [failure] = watch.of(goalId).flatMap((e) => (e.type === "TaskFailed" ? [e.value] : []));
    assert.match(failure!.reason, /401/);
    assert.equal(failure!.retryable, false);

    // Every record of every topic of this deployment, as raw bytes.
    const raw: string[] = [];
    const consumer = kafka.consumer({ groupId: `${prefix}secret-scan` });
    await consumer.connect();
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    await admin.disconnect();
    await consumer.subscribe({ topics, fromBeginning: true });
    let lastSeen = Date.now();
    await consumer.run({
      eachMessage: async ({ message }) => {
        lastSeen = Date.now();
        raw.push(message.value?.toString("latin1") ?? "", JSON.stringify(message.headers ?? {}));
      },
    });
    while (Date.now() - lastSeen < 3_000) await sleep(250);
    await consumer.disconnect();
    assert.ok(raw.length > 10, `read ${raw.length} records`);
    assert.equal(raw.filter((r) => r.includes(KEY)).length, 0, "the key is in a Kafka record");
    assert.equal(lines.filter((l) => l.includes(KEY)).length, 0, "the key is in a log line");

    // The read models, once they caught up with the goal's end.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const goal = await db.collection("goals").findOne({ _id: goalId as never });
      if (goal && JSON.stringify(goal).includes("FAILED")) break;
      if (Date.now() > deadline) throw new Error("the state read model never showed the goal failed");
      await sleep(250);
    }
    for (const c of await db.listCollections().toArray()) {
      const docs = await db.collection(c.name).find().toArray();
      assert.ok(!JSON.stringify(docs).includes(KEY), `the key is in collection ${c.name}`);
    }
    const { rows: tables } = await pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`,
      [schema],
    );
    assert.ok(tables.length > 3);
    for (const { table_name } of tables) {
      const { rows } = await pool.query(`SELECT t::text AS row FROM "${schema}"."${table_name}" t`);
      assert.ok(!rows.some((r: { row: string }) => r.row.includes(KEY)), `the key is in table ${table_name}`);
    }
  });
});
