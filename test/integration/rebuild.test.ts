/**
 * Rebuilding read models on the real stack: live analytics (own schema) and state (own database)
 * projections follow a deployment; a rebuild from offset zero must equal them, must find a row or
 * document altered behind the projection's back, must refuse to swap while the live projection
 * runs, and once it is stopped must swap the rebuilt model in (functions still answering).
 * Also checks the lag metric: it reaches zero once the projections have applied the whole log,
 * markers included.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Db } from "mongodb";
import pg from "pg";
import { registry } from "../../lib/metrics.js";
import { ProjectionHost } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { rebuild, type RebuildOptions } from "../../projections/rebuild.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { submitGoal } from "../../producers/commands.js";
import { deployment, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("rebuilding read models", () => {
  let d: TestDeployment;
  let pool: pg.Pool;
  let client: MongoClient;
  let db: Db;
  const schema = `analytics_live_${randomUUID().slice(0, 8)}`;
  let hosts: ProjectionHost[] = [];
  let goalId = "";

  const options = (extra: Partial<RebuildOptions> = {}): RebuildOptions => ({
    models: ["analytics", "state"],
    kafka: d.kafka,
    codec: d.codec,
    pool,
    db,
    topicPrefix: d.prefix,
    liveSchema: schema,
    settleTimeoutMs: 30_000,
    ...extra,
  });

  async function startLive(): Promise<void> {
    const common = { kafka: d.kafka, codec: d.codec, topicPrefix: d.prefix };
    hosts = [
      new ProjectionHost({
        ...common,
        store: new AnalyticsStore(pool, { schema }),
        topics: [...PROJECTED_TOPICS.analytics],
      }),
      new ProjectionHost({ ...common, store: new StateStore(db), topics: [...PROJECTED_TOPICS.state] }),
    ];
    for (const h of hosts) await h.start();
  }

  /** Waits until every live host reports no lag on any partition (the log end, markers included). */
  async function noLag(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lags = await Promise.all(hosts.map((h) => h.lag()));
      const behind = lags.flatMap((lag, i) =>
        [...lag].filter(([, n]) => n > 0n).map(([k, n]) => `${hosts[i]!.name} ${k}: ${n}`),
      );
      if (lags.every((l) => l.size > 0) && behind.length === 0) return;
      if (Date.now() > deadline) throw new Error(`projections still lag after ${timeoutMs} ms: ${behind.join("; ")}`);
      await sleep(250);
    }
  }

  before(async () => {
    pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 8 });
    client = new MongoClient(urls.mongoUrl);
    await client.connect();
    db = client.db(`state_rebuild_${randomUUID().slice(0, 8)}`);
    await migrate(pool, schema);
    await new StateStore(db).ensureIndexes();
    d = await deployment(testTopology(), "rebuild");
    await startLive();
    ({ goalId } = await submitGoal(
      d.writer,
      { tenantId: "acme", userId: "alice" },
      {
        title: "Goal to rebuild",
        topology: "aamas",
        tasks: TEN_TASK_DAG,
      },
    ));
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
  });

  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    await d?.stop();
    const { rows } = await pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [
      `${schema}%`,
    ]);
    for (const { nspname } of rows) await pool.query(`DROP SCHEMA "${nspname}" CASCADE`);
    await pool?.end();
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
  });

  it("exports each projection's lag, which reaches zero once the whole log is applied", async () => {
    await noLag();
    const text = await registry.metrics();
    for (const model of ["analytics", "state"]) {
      const lines = text.split("\n").filter((l) => l.startsWith(`polity_projection_lag_events{projection="${model}"`));
      assert.ok(lines.length >= PROJECTED_TOPICS.analytics.length, `lag lines for ${model}:\n${lines.join("\n")}`);
      assert.ok(
        lines.every((l) => l.endsWith(" 0")),
        `every partition at zero lag:\n${lines.join("\n")}`,
      );
    }
  });

  it("rebuilds both models from offset zero equal to the live ones, and drops the fresh targets", async () => {
    await noLag();
    const reports = await rebuild(options());
    for (const r of reports) {
      assert.equal(r.equal, true, `${r.model}: ${r.differences.join("\n")}`);
      assert.ok(r.events > 30, `${r.model} rebuilt ${r.events} events`);
    }
    const { rows } = await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname LIKE $1`, [`${schema}_rebuild_%`]);
    assert.equal(rows.length, 0, "the rebuilt schema was dropped");
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    assert.deepEqual(
      names.filter((n) => n.startsWith("rebuild_")),
      [],
    );
  });

  it("refuses to swap while the live projection runs", async () => {
    await assert.rejects(
      rebuild(options({ models: ["analytics"], swap: true })),
      /cannot swap the analytics read model while its projection runs .* stop the process running it/,
    );
  });

  it("finds rows and documents altered behind the projection's back, and a swap repairs them", async () => {
    await noLag();
    await Promise.all(hosts.map((h) => h.stop()));
    hosts = [];
    // Kafka takes a moment to see a stopped member leave its group.
    await sleep(1_000);
    const { rows: victims } = await pool.query<{ task_id: string }>(
      `DELETE FROM "${schema}".tasks WHERE task_id = (SELECT min(task_id) FROM "${schema}".tasks) RETURNING task_id`,
    );
    assert.equal(victims.length, 1);
    await db.collection("goals").updateOne({ _id: goalId as never }, { $set: { status: "FAILED" } });

    const found = await rebuild(options());
    const byModel = new Map(found.map((r) => [r.model, r]));
    assert.equal(byModel.get("analytics")!.equal, false);
    assert.match(byModel.get("analytics")!.differences.join("\n"), /table tasks: live 9 row\(s\), rebuilt 10/);
    assert.match(byModel.get("analytics")!.differences.join("\n"), new RegExp(victims[0]!.task_id));
    assert.equal(byModel.get("state")!.equal, false);
    assert.match(
      byModel.get("state")!.differences.join("\n"),
      new RegExp(`collection goals: .*1 differ \\(${goalId}\\)`),
    );

    const swapped = await rebuild(options({ swap: true }));
    for (const r of swapped) assert.ok(r.replacedBy, `${r.model} was swapped in`);
    const { rows: restored } = await pool.query(`SELECT 1 FROM "${schema}".tasks WHERE task_id = $1`, [
      victims[0]!.task_id,
    ]);
    assert.equal(restored.length, 1, "the deleted task row is back");
    const goal = await db.collection("goals").findOne({ _id: goalId as never });
    assert.equal(goal?.status, "COMPLETED");
    // The functions were created with search_path pinned to the rebuild's schema name.
    const { rows: progress } = await pool.query<{ total_tasks: number }>(
      `SELECT * FROM "${schema}".get_goal_progress($1)`,
      [goalId],
    );
    assert.equal(progress[0]?.total_tasks, 10, JSON.stringify(progress));

    // And the swapped-in models are the live ones now: a further rebuild equals them.
    await startLive();
    await noLag();
    for (const r of await rebuild(options())) assert.equal(r.equal, true, `${r.model}: ${r.differences.join("\n")}`);
  });
});
